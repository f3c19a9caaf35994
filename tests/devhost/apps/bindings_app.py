"""Fixture app: a queue trigger with a blob input and a blob output bound by expressions."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(
    arg_name="msg", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
@app.blob_input(
    arg_name="source",
    path="%DEVHOST_TEST_CONTAINER%/{queueTrigger}",
    connection="AzureWebJobsStorage",
)
@app.blob_output(
    arg_name="target",
    path="%DEVHOST_TEST_CONTAINER%-out/upper/{queueTrigger}",
    connection="AzureWebJobsStorage",
)
def upper(msg: func.QueueMessage, source: bytes, target: func.Out[bytes]) -> None:
    target.set(source.upper())
