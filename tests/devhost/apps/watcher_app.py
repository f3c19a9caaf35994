"""Fixture app: an HTTP function whose queue output feeds this app's queue trigger."""

from __future__ import annotations

import time
import typing

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
calls: list[dict[str, typing.Any]] = []


@app.route(route="send", methods=["POST"])
@app.queue_output(
    arg_name="out", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
def send(req: func.HttpRequest, out: func.Out[typing.List[str]]) -> func.HttpResponse:  # noqa: UP006
    out.set([req.get_body().decode()])
    return func.HttpResponse("queued", status_code=202)


@app.queue_trigger(
    arg_name="msg", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
def on_message(msg: func.QueueMessage) -> None:
    calls.append({"body": msg.get_body(), "at": time.monotonic()})
