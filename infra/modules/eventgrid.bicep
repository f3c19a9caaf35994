// The Event Grid system topic of the storage account. Its BlobCreated subscription to the
// `submit` function is created by infra/hooks/postdeploy.*: the endpoint carries the
// blobs extension key, which exists only once the deployed host has started.
param name string
param location string
param tags object
param storageAccountId string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
