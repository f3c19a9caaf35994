// Everything the app needs on Azure, keyless: `azd up` provisions this, deploys the app,
// then infra/hooks/postdeploy.* subscribes the input container to Event Grid and registers
// the Speech web hook. No account key, Speech key, SAS or instrumentation key is used:
// the app's user-assigned identity holds data-plane roles, Speech and Application Insights
// have local (key) auth turned off, and storage refuses shared-key requests.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds the unique names of all resources.')
param environmentName string

@minLength(1)
@description('Region of every resource (Flex Consumption and Speech must both be offered there).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user (azd fills it in): gets the roles the hooks and `python -m shared.doctor` need. Empty: no user roles.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal principalId is (a CI pipeline deploys as a ServicePrincipal).')
param principalType string = 'User'

@description('Resource group name; empty = rg-<environmentName>.')
param resourceGroupName string = ''

// Batch transcription is not offered on the free tier (F0), so S0 is the only useful SKU.
@allowed([
  'S0'
])
@description('Speech pricing tier.')
param speechSku string = 'S0'

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of each instance, in MB.')
param instanceMemoryMB int = 2048

// azure-functions 1.x (3.11, 3.12) and 2.x (3.13) are both pinned in requirements.txt with
// environment markers; tests/infra/test_template.py keeps these two lists in step.
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
@description('Python version of the Flex Consumption runtime.')
param pythonVersion string = '3.12'

@minLength(3)
@maxLength(63)
@description('Container the recordings are dropped into (INPUT_CONTAINER).')
param inputContainerName string = 'audio-input'

@minLength(3)
@maxLength(63)
@description('Container the transcripts are written to (OUTPUT_CONTAINER).')
param outputContainerName string = 'transcripts'

@minLength(3)
@maxLength(63)
@description('Container the error reports are written to (ERROR_CONTAINER).')
param errorContainerName string = 'transcription-errors'

@minLength(3)
@maxLength(63)
@description('Table of job records (JOBS_TABLE).')
param jobsTableName string = 'transcriptionjobs'

@minLength(3)
@maxLength(63)
@description('Table of the Speech quota every instance shares (SPEECH_QUOTA_TABLE).')
param speechQuotaTableName string = 'speechquota'

@minLength(3)
@maxLength(57)
@description('Queue that hands finished jobs to `complete` (COMPLETION_QUEUE); its -poison queue is created too.')
param completionQueueName string = 'transcription-completions'

// The Speech web hook pushes completions as they happen; the poller is the safety net.
@description('NCRONTAB schedule of the poller (POLL_SCHEDULE).')
param pollSchedule string = '0 */5 * * * *'

@description('Network isolation: storage only through private endpoints in a VNet the app is integrated into; Speech reads recordings with its own identity.')
param vnetEnabled bool = false

@description('Optional: resource id of a storage account Speech writes its results to (bring your own storage). Empty: Speech keeps results itself.')
param speechByosStorageAccountId string = ''

@secure()
@description('Secret the Speech web hook signs callbacks with (WEBHOOK_SECRET); generated once by infra/hooks/preprovision.*.')
param webhookSecret string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
// Flex Consumption pulls the app package from this container (with the app's identity).
var deploymentContainerName = 'app-package'
var byosEnabled = !empty(speechByosStorageAccountId)
// Name of the app's connection to the BYOS account (SPEECH_RESULTS_CONNECTION).
var speechResultsConnection = 'SpeechResultsStorage'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module speech 'modules/speech.bicep' = {
  name: 'speech'
  scope: rg
  params: {
    name: 'spch-${resourceToken}'
    location: location
    tags: tags
    sku: speechSku
    byosStorageAccountId: speechByosStorageAccountId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      inputContainerName
      outputContainerName
      errorContainerName
      deploymentContainerName
    ]
    queueNames: [
      completionQueueName
      '${completionQueueName}-poison'
    ]
    tableNames: [
      jobsTableName
      speechQuotaTableName
    ]
    vnetEnabled: vnetEnabled
    speechResourceId: speech.outputs.id
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    storageAccountId: storage.outputs.id
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountId: storage.outputs.id
  }
}

// The app's settings, in one place (tests/infra check them against shared/settings.py).
// Every connection uses the user-assigned identity: `__credential`/`__clientId` for the
// host and the storage clients, AZURE_CLIENT_ID for DefaultAzureCredential (Speech).
var baseAppSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AZURE_CLIENT_ID: identity.outputs.clientId
  SPEECH_ENDPOINT: 'https://${speech.outputs.customSubDomainName}.cognitiveservices.azure.com'
  INPUT_CONTAINER: inputContainerName
  OUTPUT_CONTAINER: outputContainerName
  ERROR_CONTAINER: errorContainerName
  JOBS_TABLE: jobsTableName
  // Flex Consumption scales each function out on its own instances: they share one quota.
  SPEECH_QUOTA_TABLE: speechQuotaTableName
  COMPLETION_QUEUE: completionQueueName
  // Flex Consumption allows only the Event Grid source for blob triggers.
  BLOB_TRIGGER_SOURCE: 'EventGrid'
  POLL_SCHEDULE: pollSchedule
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  // Application Insights has local auth off: telemetry is sent with an Entra token.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identity.outputs.clientId}'
}
// Storage refuses SAS from the Speech service's network when it is locked down: Speech
// then reads plain blob URLs with its own identity (a trusted Azure service).
var vnetAppSettings = vnetEnabled ? { SPEECH_STORAGE_ACCESS: 'identity' } : {}
// Results in a BYOS account come without a SAS: the app reads them with its identity.
var byosSettings = {
  SPEECH_RESULTS_CONNECTION: speechResultsConnection
  '${speechResultsConnection}__blobServiceUri': 'https://${last(split(speechByosStorageAccountId, '/'))}.blob.${environment().suffixes.storage}'
  '${speechResultsConnection}__credential': 'managedidentity'
  '${speechResultsConnection}__clientId': identity.outputs.clientId
}
var byosAppSettings = byosEnabled ? byosSettings : {}
var appSettings = union(baseAppSettings, vnetAppSettings, byosAppSettings)

module function 'modules/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentBlobContainerUrl: '${storage.outputs.blobEndpoint}${deploymentContainerName}'
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    appSettings: appSettings
    webhookSecret: webhookSecret
    subnetId: vnetEnabled ? network.outputs.appSubnetId : ''
  }
  // The host needs its storage roles before it starts; the deployment needs the package container.
  dependsOn: [
    roles
  ]
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    speechAccountName: speech.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    speechPrincipalId: speech.outputs.principalId
    speechReadsStorage: vnetEnabled
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// The BYOS account may live in another resource group: its role assignments go there.
module byosRoles 'modules/byos-roles.bicep' = if (byosEnabled) {
  name: 'byos-roles'
  scope: resourceGroup(split(speechByosStorageAccountId, '/')[2], split(speechByosStorageAccountId, '/')[4])
  params: {
    storageAccountName: last(split(speechByosStorageAccountId, '/'))
    appPrincipalId: identity.outputs.principalId
    speechPrincipalId: speech.outputs.principalId
  }
}

// azd writes these outputs to .azure/<env>/.env: the hooks read them, and the storage and
// Speech ones let `python -m shared.doctor` run on the developer machine (with `az login`).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = function.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = function.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output SPEECH_RESOURCE_NAME string = speech.outputs.name
output SPEECH_ENDPOINT string = baseAppSettings.SPEECH_ENDPOINT
output INPUT_CONTAINER string = inputContainerName
output OUTPUT_CONTAINER string = outputContainerName
output ERROR_CONTAINER string = errorContainerName
output JOBS_TABLE string = jobsTableName
output COMPLETION_QUEUE string = completionQueueName
output AzureWebJobsStorage__blobServiceUri string = storage.outputs.blobEndpoint
output AzureWebJobsStorage__queueServiceUri string = storage.outputs.queueEndpoint
output AzureWebJobsStorage__tableServiceUri string = storage.outputs.tableEndpoint
output VNET_ENABLED bool = vnetEnabled
// False when provisioning ran without a WEBHOOK_SECRET: the post-deploy hook then stops
// before registering a signed web hook the app could not verify.
output WEBHOOK_SECRET_IN_APP bool = !empty(webhookSecret)
