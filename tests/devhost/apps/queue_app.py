"""Fixture app: a queue trigger that records messages and fails on body b"fail"."""

from __future__ import annotations

import threading
from typing import Any

import azure.functions as func

app = func.FunctionApp()
calls: list[dict[str, Any]] = []
release = threading.Event()  # a b"slow" message waits for it
_lock = threading.Lock()


@app.queue_trigger(
    arg_name="msg", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
@app.queue_output(
    arg_name="out", queue_name="%DEVHOST_TEST_QUEUE%-out", connection="AzureWebJobsStorage"
)
def on_message(msg: func.QueueMessage, out: func.Out[str]) -> None:
    body = msg.get_body()
    with _lock:
        calls.append({"id": msg.id, "body": body, "dequeue_count": msg.dequeue_count, "arg": msg})
    if body == b"fail":
        raise RuntimeError("asked to fail")
    if body == b"slow":
        release.wait(20)
    out.set(f"done:{body.decode()}")
