// The storage account for everything: recordings, transcripts, error reports, the job
// table, the completion queue, the Functions host and the Flex deployment package.
// Shared-key access is off (every request is Entra-authorised) and TLS 1.2 is the floor.
// The containers, table and queues are created here (control plane), so nothing has to
// reach the data plane from the deploying machine, which matters once storage is private.
param name string
param location string
param tags object
param containerNames array
param queueNames array
param tableNames array

@description('Network isolation: no public access; the app comes in through private endpoints.')
param vnetEnabled bool

@description('The Speech resource, allowed in by a resource-instance rule (it reads recordings in vnet mode).')
param speechResourceId string

var speechAccessRules = [
  {
    tenantId: tenant().tenantId
    resourceId: speechResourceId
  }
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      // Trusted Azure services (Event Grid publishing blob events, Speech reading with its
      // identity) and the one Speech resource instance stay allowed when the rest is denied.
      bypass: 'AzureServices'
      resourceAccessRules: vnetEnabled ? speechAccessRules : []
      ipRules: []
      virtualNetworkRules: []
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
