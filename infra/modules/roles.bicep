// Data-plane role assignments, least privilege for each principal:
//
// the app's identity
//   storage   Storage Blob Data Owner       host storage (the Functions docs require Owner for
//                                           AzureWebJobsStorage), recordings, transcripts,
//                                           user-delegation SAS for Speech
//             Storage Queue Data Contributor completion queue + poison queues (host and app)
//             Storage Table Data Contributor job records
//   speech    Cognitive Services Speech User create, read and delete batch transcriptions
//   insights  Monitoring Metrics Publisher   telemetry with an Entra token (local auth is off)
// the Speech resource's identity (vnet mode only)
//   storage   Storage Blob Data Reader       read recordings by plain URL (trusted service)
// the deploying user (when principalId is given)
//   speech    Cognitive Services Speech Contributor  register/update the web hook (postdeploy);
//                                           Speech User cannot write web hooks
//   storage   Storage Blob Data Contributor  upload recordings, read transcripts and error
//                                           reports; doctor's container checks
//             Storage Queue Data Reader      doctor: completion and poison queue depths
//             Storage Table Data Reader      doctor: job records
// (Creating the Event Grid subscription and reading the blobs extension key are control-plane
// operations the deploying user already has as the owner/contributor who ran `azd up`.)
param storageAccountName string
param speechAccountName string
param applicationInsightsName string
param appPrincipalId string
param speechPrincipalId string

@description('Grant the Speech identity read access to recordings (vnet mode).')
param speechReadsStorage bool

param userPrincipalId string = ''
param userPrincipalType string = 'User'

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  speechUser: 'f2dc8367-1007-4938-bd23-fe263f013447'
  speechContributor: '0e75ca1e-0464-4b4d-8b93-68208a576181'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]
var userStorageRoles = [
  roles.storageBlobDataContributor
  roles.storageQueueDataReader
  roles.storageTableDataReader
]
var assignUser = !empty(userPrincipalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: speechAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in appStorageRoles: {
    name: guid(storage.id, appPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appSpeech 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(speech.id, appPrincipalId, roles.speechUser)
  scope: speech
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.speechUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMonitoring 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource speechStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (speechReadsStorage) {
  name: guid(storage.id, speechPrincipalId, roles.storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: speechPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userSpeech 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignUser) {
  name: guid(speech.id, userPrincipalId, roles.speechContributor)
  scope: speech
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.speechContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

resource userStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in (assignUser ? userStorageRoles : []): {
    name: guid(storage.id, userPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: userPrincipalId
      principalType: userPrincipalType
    }
  }
]
