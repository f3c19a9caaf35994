"""Fixture app: a timer trigger that records past_due and when each run started and ended;
clearing `gate` makes runs wait."""

from __future__ import annotations

import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp()
calls: list[dict[str, Any]] = []
gate = threading.Event()
gate.set()
concurrency = {"running": 0, "max": 0}
_lock = threading.Lock()


@app.timer_trigger(arg_name="timer", schedule="%DEVHOST_TEST_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    call: dict[str, Any] = {"past_due": timer.past_due, "started": time.monotonic()}
    with _lock:
        concurrency["running"] += 1
        concurrency["max"] = max(concurrency["max"], concurrency["running"])
        calls.append(call)
    try:
        gate.wait(10)
    finally:
        with _lock:
            concurrency["running"] -= 1
            call["ended"] = time.monotonic()


startup_calls: list[bool] = []


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    startup_calls.append(timer.past_due)
