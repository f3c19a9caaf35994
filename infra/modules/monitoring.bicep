// Log Analytics + workspace-based Application Insights with local (instrumentation key)
// auth turned off: the app sends telemetry with an Entra token of its identity, which holds
// Monitoring Metrics Publisher on the component (modules/roles.bicep).
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
// A connection string names the component; with DisableLocalAuth it grants nothing by itself.
output connectionString string = applicationInsights.properties.ConnectionString
