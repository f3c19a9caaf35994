// The app's user-assigned identity: every data-plane role of the app is granted to it, and
// the app selects it by client id (AzureWebJobsStorage__clientId, AZURE_CLIENT_ID).
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
