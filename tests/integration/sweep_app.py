"""`function_app` plus the sweep timer, for tests and devhost runs before function_app.py has it.

The glue below is what function_app.py gets (see the sweep's report to the lead); once it is
there, this module adds nothing and simply re-exports the app. `SWEEP_GRACE_SECONDS` (tests
only) shortens the sweep's grace period so a test need not wait 10 minutes.
"""

import os
from datetime import timedelta

import azure.functions as func

import function_app
from function_app import app

__all__ = ["app"]

if not hasattr(function_app, "sweep"):

    @app.function_name("sweep")
    @app.timer_trigger(
        arg_name="timer",
        schedule=function_app._setting_ref("SWEEP_SCHEDULE", function_app.settings.sweep_schedule),
        run_on_startup=False,
    )
    def sweep(timer: func.TimerRequest) -> None:
        """Submit input blobs that have no job; re-drive poison messages."""
        from shared.runtime import runtime_for  # noqa: PLC0415 - lazy: lean cold start
        from shared.settings import get_settings  # noqa: PLC0415
        from shared.sweep import SweepLimits, run_sweep  # noqa: PLC0415

        grace = os.environ.get("SWEEP_GRACE_SECONDS", "").strip()
        limits = SweepLimits(grace=timedelta(seconds=float(grace))) if grace else None
        run_sweep(runtime_for(get_settings()), limits)
