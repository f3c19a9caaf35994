"""The web hook endpoint's I/O: a verified completion event hands its job to completion.

`shared.webhook.interpret` decides what a request means; this module acts on a
`Completion` exactly as the poller does when it sees a finished job: the job record found
by the transcription's ``displayName`` (= the job key) moves to ``completing`` with a
conditional write, THEN ``{"job_key": ...}`` is enqueued (`shared.poll.mark_finished`).
A callback that loses that write to another run reads the record again and applies its fact
(this transcription finished) to the state it finds: still ``submitted``/``running`` (the
poller recorded a status it read just before the end) -> ``completing`` and enqueued;
``completing``/``done`` (a repeated callback, a ``:test`` replay or the poller got there
first) -> nothing more; resubmitted as another transcription, deferred, or ended -> ignored.
Only the run that wins the write enqueues, and losing a race no longer leaves the job to
the next poll.

An unsigned callback (no WEBHOOK_SECRET configured) is treated as a hint only: the job's
status is read from the service before anything changes, so a forged request can at worst
cost one GET. Transient storage or Speech failures answer 503, so the service retries; the
poller remains the safety net either way.

On the Functions host the completion message goes out through the function's queue output
binding rather than the queue client: the host writes it when the function returns and
then tells its own completion listener to poll at once (`SharedQueueWatcher`), instead of
leaving the message for the listener's next poll, up to `maxPollingInterval` later. A
host that fails to write it fails the request (5xx, so the service calls again) and the
completion lease heals the job as after a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from shared import jobs
from shared.batch_messages import Send
from shared.batch_poll import mark_batch_finished
from shared.batches import BatchState, describe_batch, is_batch_key
from shared.errors import (
    JobConflictError,
    SpeechNotFoundError,
    SpeechServiceError,
    StorageTransientError,
)
from shared.jobs import JobRecord, JobState
from shared.poll import mark_finished
from shared.webhook import Completion, Reply, interpret

if TYPE_CHECKING:
    import azure.functions as func

    from shared.runtime import Runtime
    from shared.speech_models import Transcription

log = logging.getLogger(__name__)

__all__ = ["handle_callback", "handle_http_request"]

_warned_unsigned = threading.Event()
# Conditional writes one callback tries before giving up with 503. Each loss means another
# run changed the job; every writer but the poller's routine status update ends the race
# (completing, deferred with the transcription forgotten, or terminal), so two are typical.
_MAX_WRITES: Final = 5


def handle_http_request(
    rt: Runtime, req: func.HttpRequest, completions: func.Out[list[str]] | None = None
) -> func.HttpResponse:
    """The HTTP-triggered function's work: one web hook request in, one response out.

    A completion message goes to `completions` (the function's queue output) when given,
    else straight to the completion queue.
    """
    import azure.functions as func  # noqa: PLC0415 - only the HTTP function needs it

    messages: list[str] = []
    reply = handle_callback(
        rt,
        method=req.method,
        headers=dict(req.headers),
        params=dict(req.params),
        body=req.get_body(),
        send=None if completions is None else messages.append,
    )
    if messages and completions is not None:
        completions.set(messages)
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
    send: Send | None = None,
) -> Reply:
    """Answer one web hook request; on a verified completion, hand its job to completion
    (its message to `send` when given, else to the completion queue)."""
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
        return _complete(rt, decision, send)
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


def _complete(rt: Runtime, completion: Completion, send: Send | None) -> Reply:
    transcription = completion.transcription
    key = transcription.display_name
    if is_batch_key(key):
        return _complete_batch(rt, completion, send)
    if not key.startswith(jobs.KEY_PREFIX):
        # The web hook covers every transcription of the Speech resource, not only ours.
        log.info(
            "webhook: transcription %s (displayName %r) is not a job of this app; ignored",
            transcription.id,
            key[:80],
        )
        return Reply(202, "not a job of this app; ignored")
    confirmed = completion.signed
    # The callback states a fact: this transcription finished. When another run writes the
    # record between our read and our write (the poller recording a status it read just
    # before the end, a repeated callback), our write loses the ETag race: read the record
    # again and apply the fact to it as it is now, rather than leave the job to the poller.
    for _ in range(_MAX_WRITES):
        record = _current_job(rt, key, transcription)
        if isinstance(record, Reply):
            return record
        if not confirmed:
            current = _confirm(rt, transcription)
            if current is None:
                log.warning(
                    "%s: unsigned completion callback, but the service says %s is not "
                    "finished; ignored",
                    jobs.describe(record),
                    transcription.id,
                )
                return Reply(
                    202, "the service does not report this transcription finished; ignored"
                )
            transcription, confirmed = current, True
        rt.ensure_resources()  # once per process: the completion queue exists
        try:
            mark_finished(rt, record, transcription, send=send)
        except JobConflictError:
            log.info(
                "%s: changed by another run while handling the callback; reading it again",
                jobs.describe(record),
            )
            continue
        log.info(
            "%s: completion pushed by web hook (%s)", jobs.describe(record), transcription.status
        )
        return Reply(202, "completion enqueued")
    log.warning(
        "webhook: job=%s changed under each of %d tries to record the end of transcription "
        "%s; answered 503 so the service retries (the poller catches it otherwise)",
        key,
        _MAX_WRITES,
        transcription.id,
    )
    return Reply(503, "the job kept changing while recording the completion; retry later")


def _complete_batch(rt: Runtime, completion: Completion, send: Send | None) -> Reply:
    """A batch's transcription finished: the batch moves to completing, then one completion
    message for all its recordings (`shared.batch_poll.mark_batch_finished`)."""
    transcription = completion.transcription
    for _ in range(_MAX_WRITES):
        batch = rt.batches.get(transcription.display_name)
        if batch is None or batch.transcription_id != transcription.id:
            log.info(
                "webhook: batch=%s does not follow transcription %s; ignored",
                transcription.display_name,
                transcription.id,
            )
            return Reply(202, "not a batch's current transcription; ignored")
        if batch.state is not BatchState.SUBMITTED:
            return Reply(202, f"batch already {batch.state}")
        if not completion.signed:
            current = _confirm(rt, transcription)
            if current is None:
                return Reply(
                    202, "the service does not report this transcription finished; ignored"
                )
            transcription = current
        rt.ensure_resources()
        try:
            mark_batch_finished(rt, batch, transcription, send=send)
        except JobConflictError:
            continue
        log.info(
            "%s: completion pushed by web hook (%s)", describe_batch(batch), transcription.status
        )
        return Reply(202, "batch completion enqueued")
    return Reply(503, "the batch kept changing while recording the completion; retry later")


def _current_job(rt: Runtime, key: str, transcription: Transcription) -> JobRecord | Reply:
    """The job `key` as it is now when the end of `transcription` still concerns it, else
    the reply that says why there is nothing to do."""
    record = rt.store.get(key)
    if record is None:
        log.info("webhook: job=%s (transcription %s) unknown; ignored", key, transcription.id)
        return Reply(202, "unknown job; ignored")
    if record.transcription_id != transcription.id:
        # The job was resubmitted since (or deferred, which forgets the transcription): this
        # is the end of a transcription it no longer follows (or one it has not recorded
        # yet; the poller's lookup adopts that one).
        log.info(
            "%s: completion of transcription %s, but the job follows %r; ignored",
            jobs.describe(record),
            transcription.id,
            record.transcription_id,
        )
        return Reply(202, "not the job's current transcription; ignored")
    if record.state not in (JobState.SUBMITTED, JobState.RUNNING):
        # Completing, done, failed or rejected: someone already handed the end over (or the
        # job ended otherwise); enqueueing again would only add a duplicate.
        log.info(
            "%s: completion callback while %s; nothing to do", jobs.describe(record), record.state
        )
        return Reply(202, f"job already {record.state}")
    return record


def _confirm(rt: Runtime, transcription: Transcription) -> Transcription | None:
    """The service's own view of `transcription` when it has finished, else None."""
    try:
        current, _ = rt.speech.get(transcription.id)
    except SpeechNotFoundError:
        return None
    return current if current.status.is_terminal else None
