"""A local development host that runs `function_app.py` without Azure Functions Core Tools.

A local tool only: production runs on Azure Functions. See README, "Local development".

- `python -m devhost` (`devhost.__main__`): load local.settings.json, index the app, run it.
- `devhost.host.DevHost`: the same in-process, for tests and benchmarks; `start()`/`stop()`,
  or one deterministic cycle at a time with `scan_blobs()`, `poll_queues()`, `fire_timer()`.
- `python -m devhost.stack run|demo|upload` (`make run`, `make demo`, `make upload`): Azurite,
  the local Speech service and the app together.
- `devhost.services`: start/stop Azurite and the Speech emulator as subprocesses.
"""
