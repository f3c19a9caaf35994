// The Speech resource: Entra ID only (local auth off), which needs a custom subdomain.
// Its system-assigned identity is what storage trusts when it reads recordings from a
// locked-down account (vnet mode) and what writes results to a BYOS account.
param name string
param location string
param tags object
param sku string

@description('Resource id of a storage account for results (bring your own storage); empty: none.')
param byosStorageAccountId string = ''

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'SpeechServices'
  sku: {
    name: sku
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    userOwnedStorage: empty(byosStorageAccountId) ? null : [ { resourceId: byosStorageAccountId } ]
  }
}

output id string = speech.id
output name string = speech.name
output customSubDomainName string = speech.properties.customSubDomainName
output principalId string = speech.identity.principalId
