# azd preprovision hook (PowerShell): make sure the azd environment holds a WEBHOOK_SECRET.
#
# Same contract as preprovision.sh: generated once, kept in .azure/<env>/.env (git-ignored),
# passed to the app setting by provisioning and to the Speech web hook by the post-deploy
# hook. Re-running keeps it. To rotate it: `azd env set WEBHOOK_SECRET <new>`, then `azd up`.
$ErrorActionPreference = 'Stop'

$current = $env:WEBHOOK_SECRET
if ([string]::IsNullOrWhiteSpace($current)) {
  $current = (& azd env get-value WEBHOOK_SECRET 2>$null)
  if ($LASTEXITCODE -ne 0) { $current = '' }
}
if (-not [string]::IsNullOrWhiteSpace($current)) {
  Write-Host 'WEBHOOK_SECRET: kept (already in the azd environment)'
  exit 0
}

# 48 letters and digits from a cryptographic generator (rejection sampling: no modulo bias).
$alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
$builder = [System.Text.StringBuilder]::new()
$buffer = [byte[]]::new(1)
$rng = [System.Security.Cryptography.RandomNumberGenerator]::Create()
try {
  while ($builder.Length -lt 48) {
    $rng.GetBytes($buffer)
    if ($buffer[0] -lt 248) { [void]$builder.Append($alphabet[$buffer[0] % 62]) }
  }
} finally {
  $rng.Dispose()
}
& azd env set WEBHOOK_SECRET $builder.ToString()
if ($LASTEXITCODE -ne 0) { throw 'azd env set WEBHOOK_SECRET failed' }
Write-Host 'WEBHOOK_SECRET: generated and stored in the azd environment'
