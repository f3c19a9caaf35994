"""Fixture app for several devhost instances: every run records itself as a blob.

Each record is named after what ran and the process that ran it
(``tick/<occurrence>/<pid>``, ``blob/<name>/<pid>``, ``queue/<body>/<pid>`` in the
container ``DEVHOST_TEST_RESULTS``), so a test sees from storage which instance did what,
and a duplicate run shows as a second record.
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

import azure.functions as func
from azure.storage.blob import BlobServiceClient

app = func.FunctionApp()


def _record(name: str) -> None:
    service = BlobServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])  # noqa: SIM112
    blob = service.get_blob_client(os.environ["DEVHOST_TEST_RESULTS"], f"{name}/{os.getpid()}")
    blob.upload_blob(b"", overwrite=True)


@app.timer_trigger(arg_name="timer", schedule="%DEVHOST_TEST_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    # The occurrence after this one names this one uniquely, whoever runs it.
    # (`schedule_status` is on the concrete request the host passes, not the abstract type.)
    _record(f"tick/{cast(Any, timer).schedule_status['Next']}")


@app.blob_trigger(
    arg_name="blob", path="%DEVHOST_TEST_INPUT%/{name}", connection="AzureWebJobsStorage"
)
def on_blob(blob: func.InputStream) -> None:
    time.sleep(0.3)  # a little work, so that instances scanning meanwhile see it running
    _record(f"blob/{(blob.name or '').rsplit('/', 1)[-1]}")


@app.queue_trigger(
    arg_name="msg", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
def on_message(msg: func.QueueMessage) -> None:
    _record(f"queue/{msg.get_body().decode()}")
