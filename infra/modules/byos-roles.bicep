// Bring-your-own-storage for Speech results: Speech writes results into this account with
// its system-assigned identity, and the app reads them (result URLs carry no SAS) with its
// user-assigned identity. Deployed into the BYOS account's own resource group.
param storageAccountName string
param appPrincipalId string
param speechPrincipalId string

var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource speechWrites 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, speechPrincipalId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: speechPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appReads 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
