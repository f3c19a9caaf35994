#!/bin/sh
# azd postdeploy hook (POSIX sh). Runs on the deploying machine after the app is deployed:
#
# 1. Event Grid: subscribes the storage account's BlobCreated events, filtered to the input
#    container, to the `submit` function's blobs extension endpoint. Flex Consumption only
#    runs blob triggers from Event Grid, and the endpoint needs the blobs extension system
#    key, which exists only once the deployed host has started. (Control plane only.)
# 2. Speech web hook: registers https://<app>/api/speech-webhook for transcriptionCompletion,
#    signed with WEBHOOK_SECRET, or updates the hook it registered before (same display name
#    or URL): never a second one. Speech has local auth off, so the call carries an Entra
#    token of the signed-in Azure CLI user (Cognitive Services Speech Contributor).
#
# Idempotent: run it again (`azd hooks run postdeploy`) after changing anything. Needs only
# the Azure CLI (`az login`); azd passes its environment (the Bicep outputs) as variables.
set -eu

fail() {
  echo "error: $*" >&2
  exit 1
}

command -v az >/dev/null 2>&1 ||
  fail "the Azure CLI (az) is not on PATH: install it (https://aka.ms/azcli) and run 'az login'"

for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_HOSTNAME \
  AZURE_EVENTGRID_SYSTEM_TOPIC_NAME INPUT_CONTAINER SPEECH_ENDPOINT; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || fail "$name is not in the azd environment: run 'azd provision' first"
done

# How long to wait for the host to start and for new role assignments to take effect.
wait_seconds="${HOOK_WAIT_SECONDS:-600}"
retry_seconds="${HOOK_RETRY_SECONDS:-15}"
deadline=$(($(date +%s) + wait_seconds))
before_deadline() { [ "$(date +%s)" -lt "$deadline" ]; }

# --- 1. Event Grid subscription -----------------------------------------------------------
event_subscription="submit-blob-created"
# Subjects look like /blobServices/default/containers/<container>/blobs/<name>: the trailing
# /blobs/ keeps a container whose name merely starts with INPUT_CONTAINER out.
subject_filter="/blobServices/default/containers/${INPUT_CONTAINER}/blobs/"

key=""
while :; do
  key=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
    --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)
  [ -n "$key" ] && break
  before_deadline ||
    fail "the app has no blobs_extension system key after ${wait_seconds} s: is the deployment" \
      "healthy? Check the app's logs, then run 'azd hooks run postdeploy' again"
  echo "Waiting for the app's host to start (it creates the blobs extension key) ..."
  sleep "$retry_seconds"
done

endpoint="https://${AZURE_FUNCTION_APP_HOSTNAME}/runtime/webhooks/blobs?functionName=Host.Functions.submit&code=${key}"
# `create` is a create-or-update: re-running refreshes the endpoint (and its key).
# Event Grid validates the endpoint with a handshake the running host answers; retry while
# a fresh host is still warming up.
until az eventgrid system-topic event-subscription create \
  --name "$event_subscription" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC_NAME" \
  --endpoint-type webhook \
  --endpoint "$endpoint" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "$subject_filter" \
  --only-show-errors -o none; do
  before_deadline ||
    fail "could not create the Event Grid subscription $event_subscription; run" \
      "'azd hooks run postdeploy' again once the app is running"
  echo "Retrying the Event Grid subscription in ${retry_seconds} s ..."
  sleep "$retry_seconds"
done
echo "Event Grid: BlobCreated in ${INPUT_CONTAINER} -> submit (subscription $event_subscription)"

# --- 2. Speech web hook -------------------------------------------------------------------
if [ "${WEBHOOK_SECRET_IN_APP:-true}" != "true" ]; then
  fail "the app was provisioned without WEBHOOK_SECRET (the preprovision hook had not run" \
    "or azd did not reload its environment): run 'azd provision', then" \
    "'azd hooks run postdeploy'"
fi
secret="${WEBHOOK_SECRET:-}"
[ -n "$secret" ] || fail "WEBHOOK_SECRET is not in the azd environment: run 'azd provision'"
case "$secret" in
  *[!A-Za-z0-9._~+/=-]*)
    fail "WEBHOOK_SECRET may only hold letters, digits and . _ ~ + / = -" ;;
esac

api_version="${SPEECH_API_VERSION:-2024-11-15}"
hooks_url="${SPEECH_ENDPOINT%/}/speechtotext/webhooks"
web_url="https://${AZURE_FUNCTION_APP_HOSTNAME}/api/speech-webhook"
# The same display name as `python -m shared.webhook_admin register` uses by default.
display_name="speech-batch-functions completion push"

speech() {
  az rest --resource "https://cognitiveservices.azure.com" --only-show-errors "$@"
}

# The body holds the secret: a private temporary file, never an argument.
umask 077
body=$(mktemp)
trap 'rm -f "$body"' EXIT
printf '{"displayName": "%s", "webUrl": "%s", "events": {"transcriptionCompletion": true}, "properties": {"secret": "%s"}}\n' \
  "$display_name" "$web_url" "$secret" >"$body"

# The hook registered before: by display name or by URL. A new role assignment can take a
# few minutes to reach the Speech data plane: retry until the deadline.
query="values[?displayName=='${display_name}' || webUrl=='${web_url}'] | [0].[self, status]"
until found=$(speech --method get --url "${hooks_url}?api-version=${api_version}&top=100" \
  --query "$query" -o tsv); do
  before_deadline ||
    fail "cannot list the Speech web hooks; does your account hold Cognitive Services" \
      "Speech Contributor on the Speech resource (principalId at provisioning)?"
  echo "Waiting for the Speech role assignment to take effect ..."
  sleep "$retry_seconds"
done

hook_self=$(printf '%s\n' "$found" | cut -f1)
hook_status=$(printf '%s\n' "$found" | cut -s -f2)
hook_id=""
if [ -n "$hook_self" ]; then
  hook_id=${hook_self%%\?*}
  hook_id=${hook_id##*/}
fi
if [ -n "$hook_id" ] && [ "$hook_status" = "Failed" ]; then
  # A hook whose challenge failed stays failed: replace it rather than patch it.
  speech --method delete --url "${hooks_url}/${hook_id}?api-version=${api_version}" -o none
  hook_id=""
fi
if [ -n "$hook_id" ]; then
  speech --method patch --url "${hooks_url}/${hook_id}?api-version=${api_version}" \
    --body "@${body}" -o none
  echo "Speech web hook ${hook_id}: updated (${web_url})"
else
  hook_self=$(speech --method post --url "${hooks_url}?api-version=${api_version}" \
    --body "@${body}" --query self -o tsv)
  hook_id=${hook_self%%\?*}
  hook_id=${hook_id##*/}
  echo "Speech web hook ${hook_id}: registered (${web_url})"
fi

# The service challenges the URL; the app's speech_webhook function answers it.
while :; do
  status=$(speech --method get --url "${hooks_url}/${hook_id}?api-version=${api_version}" \
    --query status -o tsv)
  case "$status" in
    Succeeded)
      echo "Speech web hook ${hook_id}: challenge succeeded; completions are pushed to the app"
      exit 0
      ;;
    Failed)
      message=$(speech --method get --url "${hooks_url}/${hook_id}?api-version=${api_version}" \
        --query "properties.error.message" -o tsv || true)
      fail "the Speech service could not reach ${web_url}: ${message:-no detail}." \
        "Is the app running? Run 'azd hooks run postdeploy' again to retry"
      ;;
  esac
  before_deadline ||
    fail "the web hook challenge has not completed (status ${status}); check later with" \
      "'python -m shared.webhook_admin show ${hook_id}'"
  sleep 5
done
