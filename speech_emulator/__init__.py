"""A local stand-in for Azure AI Speech batch transcription (REST API 2024-11-15 / 2025-10-15).

Run it with ``python -m speech_emulator --port 5050`` and point a Speech client at
``http://127.0.0.1:5050`` with the key ``local-dev-key``. It serves the same paths, JSON
shapes, status life cycle and error bodies as the real service:

- ``/speechtotext/transcriptions`` (submit, get, list with paging and ``filter``, files,
  delete), ``/speechtotext/webhooks`` (with the challenge handshake and signed callbacks) and
  ``/speechtotext/models`` (the base model and the ``--custom-model`` phrase-list models);
- jobs really download their ``contentUrls`` (SAS URLs into Azurite, say; or plain URLs read
  with the resource's "managed identity" in ``--storage-access identity`` mode), decode the
  audio (WAV, FLAC, MP3, ...) and run a recognition engine per channel; every input file
  waits for one of the resource's ``--concurrent-files`` slots, shared FIFO by all jobs;
  the result and report files are served from the emulator itself behind expiring signed
  URLs, or written to a destination container or bring-your-own-storage account;
- faults (rate limit, 500/503 answers, failed or vanishing jobs, failing files, latency)
  and an admin API under ``/_emulator/`` (config, stats with per-job timestamps and the
  busiest window of calls, reset, clock) let tests and benchmarks exercise an app's
  resilience.

Modules, one idea each:

- ``cli`` (options, start-up line), ``app`` (routes), ``core`` (wiring), ``config``
  (start-up settings and run-time `Behaviour`);
- ``endpoint`` (auth, api-version, faults and counting around every Speech call),
  ``api_transcriptions``, ``api_webhooks``, ``api_models``, ``admin`` (``/_emulator`` and
  file downloads);
- ``validation`` (create bodies), ``listing`` (paging, ``filter``), ``entities`` and
  ``links`` (wire shapes), ``errors`` (error bodies);
- ``store`` (in-memory state, time-to-live), ``runner`` + ``scheduler`` (job life cycle),
  ``capacity`` (the shared file slots), ``access`` (SAS or managed-identity storage access),
  ``fetch`` (anonymous downloads), ``blob_account`` (a storage account reached with the
  resource's identity), ``outputs`` (where result files go), ``audio`` (decoding),
  ``results`` (result and report files), ``tokens`` (signed contentUrls), ``webhooks``
  (callbacks), ``faults``, ``stats``, ``call_log`` (the busiest window of calls), ``clock``
  (advanceable time), ``timefmt``, ``speech_models`` (base and custom models);
- ``engines``: ``base`` (the engine seam), ``scripted``, ``sphinx``, ``registry``.
"""
