# azd postdeploy hook (PowerShell). Same steps and contract as postdeploy.sh:
#
# 1. Event Grid: subscribes the storage account's BlobCreated events, filtered to the input
#    container, to the `submit` function's blobs extension endpoint (needs the blobs
#    extension system key, which exists once the deployed host has started).
# 2. Speech web hook: registers https://<app>/api/speech-webhook for transcriptionCompletion,
#    signed with WEBHOOK_SECRET, or updates the hook it registered before (same display name
#    or URL): never a second one. The call carries an Entra token of the signed-in Azure CLI
#    user (Speech has local auth off).
#
# Idempotent: run it again (`azd hooks run postdeploy`) after changing anything.
$ErrorActionPreference = 'Stop'

function Fail([string]$Message) {
  Write-Error "error: $Message" -ErrorAction Continue
  exit 1
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  Fail "the Azure CLI (az) is not on PATH: install it (https://aka.ms/azcli) and run 'az login'"
}
foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_HOSTNAME',
  'AZURE_EVENTGRID_SYSTEM_TOPIC_NAME', 'INPUT_CONTAINER', 'SPEECH_ENDPOINT') {
  if ([string]::IsNullOrWhiteSpace([Environment]::GetEnvironmentVariable($name))) {
    Fail "$name is not in the azd environment: run 'azd provision' first"
  }
}

$waitSeconds = if ($env:HOOK_WAIT_SECONDS) { [int]$env:HOOK_WAIT_SECONDS } else { 600 }
$retrySeconds = if ($env:HOOK_RETRY_SECONDS) { [int]$env:HOOK_RETRY_SECONDS } else { 15 }
$deadline = (Get-Date).AddSeconds($waitSeconds)
function Test-BeforeDeadline { (Get-Date) -lt $deadline }

# --- 1. Event Grid subscription -----------------------------------------------------------
$eventSubscription = 'submit-blob-created'
# Subjects look like /blobServices/default/containers/<container>/blobs/<name>: the trailing
# /blobs/ keeps a container whose name merely starts with INPUT_CONTAINER out.
$subjectFilter = "/blobServices/default/containers/$($env:INPUT_CONTAINER)/blobs/"

while ($true) {
  $key = (& az functionapp keys list -g $env:AZURE_RESOURCE_GROUP -n $env:AZURE_FUNCTION_APP_NAME `
      --query 'systemKeys.blobs_extension' -o tsv 2>$null)
  if ($LASTEXITCODE -eq 0 -and -not [string]::IsNullOrWhiteSpace($key)) { break }
  if (-not (Test-BeforeDeadline)) {
    Fail "the app has no blobs_extension system key after $waitSeconds s: is the deployment healthy? Check the app's logs, then run 'azd hooks run postdeploy' again"
  }
  Write-Host "Waiting for the app's host to start (it creates the blobs extension key) ..."
  Start-Sleep -Seconds $retrySeconds
}

$endpoint = "https://$($env:AZURE_FUNCTION_APP_HOSTNAME)/runtime/webhooks/blobs?functionName=Host.Functions.submit&code=$($key.Trim())"
# `create` is a create-or-update: re-running refreshes the endpoint (and its key).
while ($true) {
  # az.cmd on Windows hands arguments to cmd.exe, which splits at '&': quote the URL inside.
  & az eventgrid system-topic event-subscription create `
    --name $eventSubscription `
    --resource-group $env:AZURE_RESOURCE_GROUP `
    --system-topic-name $env:AZURE_EVENTGRID_SYSTEM_TOPIC_NAME `
    --endpoint-type webhook `
    --endpoint "`"$endpoint`"" `
    --included-event-types Microsoft.Storage.BlobCreated `
    --subject-begins-with $subjectFilter `
    --only-show-errors -o none
  if ($LASTEXITCODE -eq 0) { break }
  if (-not (Test-BeforeDeadline)) {
    Fail "could not create the Event Grid subscription $eventSubscription; run 'azd hooks run postdeploy' again once the app is running"
  }
  Write-Host "Retrying the Event Grid subscription in $retrySeconds s ..."
  Start-Sleep -Seconds $retrySeconds
}
Write-Host "Event Grid: BlobCreated in $($env:INPUT_CONTAINER) -> submit (subscription $eventSubscription)"

# --- 2. Speech web hook -------------------------------------------------------------------
if ($env:WEBHOOK_SECRET_IN_APP -and $env:WEBHOOK_SECRET_IN_APP -ne 'true') {
  Fail "the app was provisioned without WEBHOOK_SECRET (the preprovision hook had not run or azd did not reload its environment): run 'azd provision', then 'azd hooks run postdeploy'"
}
$secret = $env:WEBHOOK_SECRET
if ([string]::IsNullOrWhiteSpace($secret)) { Fail "WEBHOOK_SECRET is not in the azd environment: run 'azd provision'" }
if ($secret -notmatch '^[A-Za-z0-9._~+/=-]+$') { Fail 'WEBHOOK_SECRET may only hold letters, digits and . _ ~ + / = -' }

$apiVersion = if ($env:SPEECH_API_VERSION) { $env:SPEECH_API_VERSION } else { '2024-11-15' }
$hooksUrl = "$($env:SPEECH_ENDPOINT.TrimEnd('/'))/speechtotext/webhooks"
$webUrl = "https://$($env:AZURE_FUNCTION_APP_HOSTNAME)/api/speech-webhook"
# The same display name as `python -m shared.webhook_admin register` uses by default.
$displayName = 'speech-batch-functions completion push'

function Invoke-Speech {
  & az rest --resource 'https://cognitiveservices.azure.com' --only-show-errors @args
}

# The body holds the secret: a temporary file, never an argument.
$body = New-TemporaryFile
try {
  @{
    displayName = $displayName
    webUrl      = $webUrl
    events      = @{ transcriptionCompletion = $true }
    properties  = @{ secret = $secret }
  } | ConvertTo-Json -Depth 4 | Set-Content -Path $body -Encoding utf8NoBOM

  $query = "values[?displayName=='$displayName' || webUrl=='$webUrl'] | [0].[self, status]"
  while ($true) {
    $found = Invoke-Speech --method get --url "`"$hooksUrl`?api-version=$apiVersion&top=100`"" --query $query -o tsv
    if ($LASTEXITCODE -eq 0) { break }
    if (-not (Test-BeforeDeadline)) {
      Fail 'cannot list the Speech web hooks; does your account hold Cognitive Services Speech Contributor on the Speech resource (principalId at provisioning)?'
    }
    Write-Host 'Waiting for the Speech role assignment to take effect ...'
    Start-Sleep -Seconds $retrySeconds
  }

  $hookId = ''
  $hookStatus = ''
  if ($found) {
    $fields = ($found | Select-Object -First 1) -split "`t"
    $hookId = (($fields[0] -split '\?')[0] -split '/')[-1]
    if ($fields.Length -gt 1) { $hookStatus = $fields[1] }
  }
  if ($hookId -and $hookStatus -eq 'Failed') {
    # A hook whose challenge failed stays failed: replace it rather than patch it.
    Invoke-Speech --method delete --url "`"$hooksUrl/$hookId`?api-version=$apiVersion`"" -o none
    if ($LASTEXITCODE -ne 0) { Fail "could not delete the failed web hook $hookId" }
    $hookId = ''
  }
  if ($hookId) {
    Invoke-Speech --method patch --url "`"$hooksUrl/$hookId`?api-version=$apiVersion`"" --body "@$body" -o none
    if ($LASTEXITCODE -ne 0) { Fail "could not update the Speech web hook $hookId" }
    Write-Host "Speech web hook ${hookId}: updated ($webUrl)"
  } else {
    $hookSelf = Invoke-Speech --method post --url "`"$hooksUrl`?api-version=$apiVersion`"" --body "@$body" --query self -o tsv
    if ($LASTEXITCODE -ne 0) { Fail 'could not register the Speech web hook' }
    $hookId = (("$hookSelf" -split '\?')[0] -split '/')[-1]
    Write-Host "Speech web hook ${hookId}: registered ($webUrl)"
  }
} finally {
  Remove-Item -Path $body -Force -ErrorAction SilentlyContinue
}

# The service challenges the URL; the app's speech_webhook function answers it.
while ($true) {
  $status = Invoke-Speech --method get --url "`"$hooksUrl/$hookId`?api-version=$apiVersion`"" --query status -o tsv
  if ($status -eq 'Succeeded') {
    Write-Host "Speech web hook ${hookId}: challenge succeeded; completions are pushed to the app"
    exit 0
  }
  if ($status -eq 'Failed') {
    $message = Invoke-Speech --method get --url "`"$hooksUrl/$hookId`?api-version=$apiVersion`"" --query 'properties.error.message' -o tsv
    Fail "the Speech service could not reach ${webUrl}: $message. Is the app running? Run 'azd hooks run postdeploy' again to retry"
  }
  if (-not (Test-BeforeDeadline)) {
    Fail "the web hook challenge has not completed (status $status); check later with 'python -m shared.webhook_admin show $hookId'"
  }
  Start-Sleep -Seconds 5
}
