"""The web hook endpoint's I/O: a verified completion event hands its job to completion.

`shared.webhook.interpret` decides what a request means; this module acts on a
`Completion` exactly as the poller does when it sees a finished job: the job record found
by the transcription's ``displayName`` (= the job key) moves to ``completing`` with a
conditional write, THEN ``{"job_key": ...}`` is enqueued (`shared.poll.mark_finished`).
So a callback that races the poller, a repeated callback, or a ``:test`` replay finds the
job already ``completing``/``done`` (or loses the conditional write) and enqueues nothing.

An unsigned callback (no WEBHOOK_SECRET configured) is treated as a hint only: the job's
status is read from the service before anything changes, so a forged request can at worst
cost one GET. Transient storage or Speech failures answer 503, so the service retries; the
poller remains the safety net either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared import jobs
from shared.errors import (
    JobConflictError,
    SpeechNotFoundError,
    SpeechServiceError,
    StorageTransientError,
)
from shared.jobs import JobState
from shared.poll import mark_finished
from shared.webhook import Completion, Reply, interpret

if TYPE_CHECKING:
    import azure.functions as func

    from shared.runtime import Runtime
    from shared.speech_models import Transcription

log = logging.getLogger(__name__)

__all__ = ["handle_callback", "handle_http_request"]

_warned_unsigned = threading.Event()


def handle_http_request(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """The HTTP-triggered function's work: one web hook request in, one response out."""
    import azure.functions as func  # noqa: PLC0415 - only the HTTP function needs it

    reply = handle_callback(
        rt,
        method=req.method,
        headers=dict(req.headers),
        params=dict(req.params),
        body=req.get_body(),
    )
    return func.HttpResponse(
        reply.text,
        status_code=reply.status,
        mimetype="text/plain",
        charset="utf-8",
        # The challenge token is echoed: never let a browser sniff it into something else.
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


def handle_callback(
    rt: Runtime,
    *,
    method: str,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    body: bytes,
) -> Reply:
    """Answer one web hook request; on a verified completion, hand its job to completion."""
    secret = rt.settings.webhook_secret.reveal()
    if not secret and not _warned_unsigned.is_set():
        _warned_unsigned.set()
        log.warning(
            "webhook: WEBHOOK_SECRET is not set, so callbacks are not authenticated; each "
            "completion is confirmed with the Speech service before it is acted on. Set "
            "WEBHOOK_SECRET and register the web hook with the same secret."
        )
    decision = interpret(method=method, headers=headers, params=params, body=body, secret=secret)
    if isinstance(decision, Reply):
        _log_reply(decision)
        return decision
    try:
        return _complete(rt, decision)
    except (StorageTransientError, SpeechServiceError) as exc:
        log.warning(
            "webhook: completion of transcription %s not handed over, the service may retry "
            "and the poller will catch it: %s",
            decision.transcription.id,
            exc,
        )
        return Reply(503, "temporarily unable to record the completion; retry later")


def _log_reply(reply: Reply) -> None:
    if reply.status == 200:
        # The body of a 200 is the challenge token or "pong": neither is worth logging.
        log.info("webhook: answered a challenge or ping")
    elif reply.status < 300:
        log.info("webhook: %s", reply.text)
    else:
        log.warning("webhook: rejected a request with %d: %s", reply.status, reply.text)


def _complete(rt: Runtime, completion: Completion) -> Reply:
    transcription = completion.transcription
    key = transcription.display_name
    if not key.startswith(jobs.KEY_PREFIX):
        # The web hook covers every transcription of the Speech resource, not only ours.
        log.info(
            "webhook: transcription %s (displayName %r) is not a job of this app; ignored",
            transcription.id,
            key[:80],
        )
        return Reply(202, "not a job of this app; ignored")
    record = rt.store.get(key)
    if record is None:
        log.info("webhook: job=%s (transcription %s) unknown; ignored", key, transcription.id)
        return Reply(202, "unknown job; ignored")
    if record.transcription_id != transcription.id:
        # The job was resubmitted since: this is the end of a transcription it no longer
        # follows (or one it has not recorded yet; the poller's lookup adopts that one).
        log.info(
            "%s: completion of transcription %s, but the job follows %r; ignored",
            jobs.describe(record),
            transcription.id,
            record.transcription_id,
        )
        return Reply(202, "not the job's current transcription; ignored")
    if record.state not in (JobState.SUBMITTED, JobState.RUNNING):
        log.info(
            "%s: completion callback while %s; nothing to do", jobs.describe(record), record.state
        )
        return Reply(202, f"job already {record.state}")
    if not completion.signed:
        confirmed = _confirm(rt, transcription)
        if confirmed is None:
            log.warning(
                "%s: unsigned completion callback, but the service says %s is not finished; "
                "ignored",
                jobs.describe(record),
                transcription.id,
            )
            return Reply(202, "the service does not report this transcription finished; ignored")
        transcription = confirmed
    rt.ensure_resources()  # once per process: the completion queue exists
    try:
        mark_finished(rt, record, transcription)
    except JobConflictError:
        log.info(
            "%s: changed by another run while handling the callback (the poller or a repeated "
            "callback got there first); nothing enqueued",
            jobs.describe(record),
        )
        return Reply(202, "job changed meanwhile; nothing to do")
    log.info("%s: completion pushed by web hook (%s)", jobs.describe(record), transcription.status)
    return Reply(202, "completion enqueued")


def _confirm(rt: Runtime, transcription: Transcription) -> Transcription | None:
    """The service's own view of `transcription` when it has finished, else None."""
    try:
        current, _ = rt.speech.get(transcription.id)
    except SpeechNotFoundError:
        return None
    return current if current.status.is_terminal else None
