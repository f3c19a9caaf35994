#!/bin/sh
# azd preprovision hook (POSIX sh): make sure the azd environment holds a WEBHOOK_SECRET.
#
# The secret is generated once and kept in .azure/<env>/.env (git-ignored); provisioning
# passes it to the app setting WEBHOOK_SECRET (a secure Bicep parameter) and the post-deploy
# hook registers the Speech web hook with the same value. Re-running keeps it, so the app
# and the web hook never disagree. To rotate it: `azd env set WEBHOOK_SECRET <new>`, then
# `azd provision` and `azd deploy` (or `azd up`).
set -eu

current="${WEBHOOK_SECRET:-}"
if [ -z "$current" ]; then
  current=$(azd env get-value WEBHOOK_SECRET 2>/dev/null || true)
fi
if [ -n "$current" ]; then
  echo "WEBHOOK_SECRET: kept (already in the azd environment)"
  exit 0
fi

# 48 letters and digits (~285 bits): safe in JSON, app settings and shells without quoting.
secret=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 48)
if [ "${#secret}" -ne 48 ]; then
  echo "error: could not read random bytes from /dev/urandom to generate WEBHOOK_SECRET;" \
    "set one yourself: azd env set WEBHOOK_SECRET <48 letters and digits>" >&2
  exit 1
fi
azd env set WEBHOOK_SECRET "$secret"
echo "WEBHOOK_SECRET: generated and stored in the azd environment"
