"""The transcription app: pure modules (settings, results, transcripts, job states, audio
headers) and thin adapters for the Speech service (httpx) and Storage (Azure SDKs).

`function_app.py` only wires triggers to the entry points in `shared.submit`, `shared.poll`,
`shared.complete`, `shared.sweep` and `shared.webhook_handler`.
"""
