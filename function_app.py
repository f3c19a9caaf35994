"""Azure Functions entry point (Python v2 model): glue only, the work lives in `shared/`.

The functions:

* ``submit``   blob trigger on ``%INPUT_CONTAINER%/{name}``: record the job, check the header,
  submit it to Speech (`shared.submit`).
* ``poll``     timer on ``%POLL_SCHEDULE%``: learn the status of active jobs, hand finished ones
  to the completion queue, resubmit deferred ones, time out stuck ones (`shared.poll`).
* ``complete`` queue trigger on ``%COMPLETION_QUEUE%``: write transcripts or the error
  report, delete the server-side job (`shared.complete`).
* ``sweep``    timer on ``%SWEEP_SCHEDULE%`` (hourly): submit recordings no trigger saw,
  re-drive poison messages a bounded number of times, then report them (`shared.sweep`).
* ``speech_webhook`` HTTP trigger on ``/api/speech-webhook``: Speech web hook callbacks; a
  signed completion event hands that job to the completion queue at once
  (`shared.webhook_handler`). Polling stays as the safety net.
* ``doctor``   HTTP trigger on ``/api/doctor`` (admin key): the preflight of
  ``python -m shared.doctor`` run inside the app, with its identity and network, as JSON
  (`shared.doctor.http`).
* ``ops_jobs``, ``ops_job``, ``ops_retry``, ``ops_stats``, ``ops_status``: the operator view
  (function key): ``GET /api/jobs``, ``GET /api/jobs/{key}``, ``POST /api/jobs/{key}/retry``,
  ``GET /api/stats``, and the HTML status page ``GET /api/status`` (`shared.ops.http`).

Settings are validated when this module is imported, which is when the Functions worker
indexes the app: a missing or malformed setting raises `ConfigurationError` naming it, the
host reports "Worker failed to index functions" with that message, and no function runs
half-configured. Binding expressions use ``%SETTING%`` when the setting is defined (the host
resolves them); when it is not, the documented default is written in directly, because
the host cannot resolve ``%X%`` for an app setting that does not exist.

The blob is bound as an SDK type (`azurefunctions.extensions.bindings.blob.BlobClient`): the
function gets an `azure.storage.blob.BlobClient` and reads only the header bytes it needs.
Heavy modules are imported inside the functions, so a cold start loads only what the
triggered function uses. (No ``from __future__ import annotations`` here: the worker reads
the parameter annotations at indexing time.)
"""

import logging
import os
import typing

import azure.functions as func
from azurefunctions.extensions.bindings import blob

from shared.settings import Settings, get_settings

log = logging.getLogger("function_app")
# The Azure SDKs log every Storage request (URL, headers) at INFO; the host forwards INFO to
# Application Insights. Keep their warnings and errors, not one line per request.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

settings: Settings = get_settings()  # raises ConfigurationError naming a bad setting


def _setting_ref(name: str, value: str) -> str:
    """``%NAME%`` when the app setting exists (the host resolves it), else its default value."""
    return f"%{name}%" if os.environ.get(name, "").strip() else value


_BLOB_SOURCE = (
    func.BlobSource.EVENT_GRID
    if settings.blob_trigger_source == "EventGrid"
    else func.BlobSource.LOGS_AND_CONTAINER_SCAN
)

app = func.FunctionApp()


@app.function_name("submit")
@app.blob_trigger(
    arg_name="client",
    path=_setting_ref("INPUT_CONTAINER", settings.input_container) + "/{name}",
    connection=settings.storage_connection,
    source=_BLOB_SOURCE,
)
def submit(client: blob.BlobClient) -> None:
    """A recording landed in the input container: record the job and submit it."""
    from shared.runtime import runtime_for  # noqa: PLC0415 - lazy: lean cold start
    from shared.submit import handle_new_blob  # noqa: PLC0415

    handle_new_blob(runtime_for(get_settings()), client)


@app.function_name("poll")
@app.timer_trigger(
    arg_name="timer",
    schedule=_setting_ref("POLL_SCHEDULE", settings.poll_schedule),
    run_on_startup=False,
)
def poll(timer: func.TimerRequest) -> None:
    """Learn the status of active jobs; enqueue finished ones; resubmit and time out others."""
    from shared.poll import poll as poll_jobs  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    if timer.past_due:
        log.info("poll: running late (the previous run or the host was busy)")
    poll_jobs(runtime_for(get_settings()))


@app.function_name("sweep")
@app.timer_trigger(
    arg_name="timer",
    schedule=_setting_ref("SWEEP_SCHEDULE", settings.sweep_schedule),
    run_on_startup=False,
)
def sweep(timer: func.TimerRequest) -> None:
    """Submit recordings no trigger saw; re-drive poison messages, then report them."""
    from shared.runtime import runtime_for  # noqa: PLC0415 - lazy: lean cold start
    from shared.sweep import run_sweep  # noqa: PLC0415

    run_sweep(runtime_for(get_settings()))


@app.function_name("complete")
@app.queue_trigger(
    arg_name="msg",
    queue_name=_setting_ref("COMPLETION_QUEUE", settings.completion_queue),
    connection=settings.storage_connection,
)
def complete(msg: func.QueueMessage) -> None:
    """A job finished on the service: write its transcripts or error report, then clean up."""
    from shared.complete import handle_completion_message  # noqa: PLC0415 - lazy
    from shared.runtime import runtime_for  # noqa: PLC0415

    handle_completion_message(runtime_for(get_settings()), msg.get_body().decode("utf-8"))


@app.function_name("speech_webhook")
@app.route(route="speech-webhook", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(
    arg_name="completions",
    queue_name=_setting_ref("COMPLETION_QUEUE", settings.completion_queue),
    connection=settings.storage_connection,
)
def speech_webhook(
    req: func.HttpRequest,
    # typing.List, not list: azure-functions' queue output check rejects list[str].
    completions: func.Out[typing.List[str]],  # noqa: UP006
) -> func.HttpResponse:
    """Speech web hook callbacks: the registration challenge and signed completion events.

    Anonymous because the Speech service cannot send a function key; every callback is
    authenticated by its HMAC signature with WEBHOOK_SECRET instead (401 on mismatch).
    The completion message leaves through the queue output, not the SDK: the host then
    wakes its `complete` listener at once rather than at its next poll.
    """
    from shared.runtime import runtime_for  # noqa: PLC0415 - lazy: lean cold start
    from shared.webhook_handler import handle_http_request  # noqa: PLC0415

    return handle_http_request(runtime_for(get_settings()), req, completions)


@app.function_name("doctor")
@app.route(route="doctor", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def doctor(req: func.HttpRequest) -> func.HttpResponse:
    """Check the settings, Speech, Storage, the web hook and the trigger source; JSON report.

    Admin level: the report names the app's endpoints, accounts and identities.
    """
    from shared.doctor.http import handle_http_request  # noqa: PLC0415 - lazy: lean cold start

    return handle_http_request(req)


# The operator view. Function keys, not anonymous: it lists recording names (user data) and
# can start work. The status page forwards its own `code` to the retry API.
_OPS_AUTH = func.AuthLevel.FUNCTION


@app.function_name("ops_jobs")
@app.route(route="jobs", methods=["GET"], auth_level=_OPS_AUTH)
def ops_jobs(req: func.HttpRequest) -> func.HttpResponse:
    """Jobs newest first: ``?state=&prefix=&since=&limit=&continuation=``."""
    from shared.ops import http  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    return http.list_jobs(runtime_for(get_settings()), req)


@app.function_name("ops_job")
@app.route(route="jobs/{key}", methods=["GET"], auth_level=_OPS_AUTH)
def ops_job(req: func.HttpRequest) -> func.HttpResponse:
    """One job in full, with its transitions and outputs; 404 for an unknown key."""
    from shared.ops import http  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    return http.get_job(runtime_for(get_settings()), req)


@app.function_name("ops_retry")
@app.route(route="jobs/{key}/retry", methods=["POST"], auth_level=_OPS_AUTH)
def ops_retry(req: func.HttpRequest) -> func.HttpResponse:
    """A new attempt for a failed job (idempotent); 409 with the reason for other states."""
    from shared.ops import http  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    return http.post_retry(runtime_for(get_settings()), req)


@app.function_name("ops_stats")
@app.route(route="stats", methods=["GET"], auth_level=_OPS_AUTH)
def ops_stats(req: func.HttpRequest) -> func.HttpResponse:
    """Counts, throughput, turnaround, audio hours, failure reasons: ``?hours=24``."""
    from shared.ops import http  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    return http.get_stats(runtime_for(get_settings()), req)


@app.function_name("ops_status")
@app.route(route="status", methods=["GET"], auth_level=_OPS_AUTH)
def ops_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status page: one self-contained HTML document."""
    from shared.ops import http  # noqa: PLC0415 - lazy: lean cold start
    from shared.runtime import runtime_for  # noqa: PLC0415

    return http.get_status_page(runtime_for(get_settings()), req)
