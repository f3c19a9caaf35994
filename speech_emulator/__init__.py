"""A local stand-in for Azure AI Speech batch transcription (REST API 2024-11-15 / 2025-10-15).

Run it with ``python -m speech_emulator --port 5050`` and point a Speech client at
``http://127.0.0.1:5050`` with the key ``local-dev-key``. It serves the same paths, JSON
shapes, status life cycle and error bodies as the real service:

- ``/speechtotext/transcriptions`` (submit, get, list with paging and ``filter``, files,
  delete), ``/speechtotext/webhooks`` (with the challenge handshake and signed callbacks) and
  ``/speechtotext/models`` (the base model and the ``--custom-model`` phrase-list models);
- jobs really download their ``contentUrls`` (SAS URLs into Azurite, say), decode the audio
  (WAV, FLAC, MP3, ...) and run a recognition engine per channel in a worker pool; the
  result and report files are served from the emulator itself behind expiring signed URLs;
- faults (rate limit, 500/503 answers, failed or vanishing jobs, latency) and an admin API
  under ``/_emulator/`` (config, stats with per-job timestamps, reset, clock) let tests and
  benchmarks exercise an app's resilience.

Modules: ``cli`` (options), ``config`` (settings and runtime faults), ``app`` (Starlette
routes), ``api_*`` (endpoint handlers), ``store`` (in-memory state), ``runner`` (job life
cycle), ``fetch`` (downloads), ``audio`` (decoding), ``results`` (result file builder),
``webhooks`` (callbacks), ``faults``/``stats`` (fault injection, counters), ``engines``.
"""
