"""Re-drive poison messages a bounded number of times, then report the job as failed.

Run by the sweep. Completion messages in ``<COMPLETION_QUEUE>-poison`` go back to the
completion queue with a ``redrives`` count, up to POISON_REDRIVE_LIMIT times; after that
the job gets an error report (``CompletionFailed``) and ends `failed`. Blob-trigger poison
messages for the input container (the host gave up after ``poisonBlobThreshold`` tries) are
re-driven by running the blob trigger's own submit path for the blob; when that keeps
failing, the job ends `failed` with ``SubmitFailed``. Messages for other containers or
other apps sharing the queue are left untouched.

Every step is safe to repeat: a crash leaves the poison message in place (it reappears
after its visibility timeout) and the completion function ignores a finished job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared import jobs
from shared.batch_messages import parse_batch_message
from shared.errors import JobConflictError, StorageTransientError, TranscriptionAppError
from shared.input_versions import header_etag
from shared.jobs import JobRecord, JobState
from shared.outcomes import fail_job
from shared.poison_messages import (
    BLOB_TRIGGER_POISON_QUEUE,
    BlobTriggerPoison,
    PoisonMessageError,
    completion_body,
    decode_body,
    parse_blob_trigger_poison,
    parse_completion_poison,
)
from shared.storage import storage_errors
from shared.submit import handle_new_blob

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

    from shared.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = [
    "COMPLETION_FAILED_CODE",
    "SUBMIT_FAILED_CODE",
    "VISIBILITY_S",
    "RedriveReport",
    "redrive_blob_trigger_poison",
    "redrive_completion_poison",
]

COMPLETION_FAILED_CODE: Final = "CompletionFailed"
SUBMIT_FAILED_CODE: Final = "SubmitFailed"
# A message being handled stays invisible this long; a crash makes it reappear after it.
VISIBILITY_S: Final = 300
_PAGE: Final = 32


@dataclass
class RedriveReport:
    """What one pass over the poison queues did (job keys or blob names)."""

    completions_redriven: list[str] = field(default_factory=list)
    completions_given_up: list[str] = field(default_factory=list)
    blobs_redriven: list[str] = field(default_factory=list)
    blobs_given_up: list[str] = field(default_factory=list)
    dropped: int = 0
    errors: int = 0


def _messages(queue: QueueClient, limit: int, visibility_s: int) -> Iterator[QueueMessage]:
    """Up to `limit` messages, each hidden while handled; a missing queue is an empty one."""
    taken = 0
    while taken < limit:
        try:
            with storage_errors(f"read {queue.queue_name}"):
                batch = list(
                    queue.receive_messages(
                        max_messages=min(_PAGE, limit - taken), visibility_timeout=visibility_s
                    )
                )
        except ResourceNotFoundError:
            return
        if not batch:
            return
        for message in batch:
            taken += 1
            yield message


def _delete(queue: QueueClient, message: QueueMessage) -> None:
    with storage_errors("delete poison message"):
        queue.delete_message(message.id, message.pop_receipt)


def redrive_completion_poison(
    rt: Runtime,
    report: RedriveReport,
    *,
    max_messages: int = 500,
    visibility_s: int = VISIBILITY_S,
) -> None:
    """Send completion messages in ``<COMPLETION_QUEUE>-poison`` back, a bounded number of times."""
    limit = rt.settings.poison_redrive_limit
    poison = rt.storage.queue.get_queue_client(f"{rt.settings.completion_queue}-poison")
    for message in _messages(poison, max_messages, visibility_s):
        try:
            _redrive_completion(rt, poison, message, limit, report)
        except (StorageTransientError, TranscriptionAppError, AzureError) as exc:
            # Left in the poison queue: it reappears and the next sweep tries again.
            report.errors += 1
            log.warning("sweep: completion poison message %s not handled: %s", message.id, exc)


def _is_batch_work(raw: str) -> bool:
    """True for a batch message (`shared.batch_messages`) rather than a job's completion."""
    try:
        data = decode_body(raw)
    except PoisonMessageError:
        return False
    return isinstance(data, dict) and parse_batch_message(json.dumps(data)) is not None


def _redrive_completion(
    rt: Runtime, poison: QueueClient, message: QueueMessage, limit: int, report: RedriveReport
) -> None:
    try:
        parsed = parse_completion_poison(str(message.content))
    except PoisonMessageError as exc:
        if _is_batch_work(str(message.content)):
            # Batch work is not re-driven from here: the poller re-sends the completion of a
            # batch whose lease ran out, and a wake-up whenever jobs wait in `queued`.
            log.info("sweep: dropped a poisoned batch message; the poller sends batch work again")
        else:
            log.error("sweep: dropped a malformed completion poison message: %s", exc)
        report.dropped += 1
        _delete(poison, message)
        return
    record = rt.store.get(parsed.job_key)
    if record is None or record.state.is_terminal:
        log.info(
            "job=%s: poison completion message for a job that is %s; dropped",
            parsed.job_key,
            "unknown" if record is None else record.state,
        )
        _delete(poison, message)
        return
    if record.state is not JobState.COMPLETING:
        # A completion message is only ever sent for a job in `completing`. This one is
        # stale: the job has gone back to the service since (resubmitted after a transient
        # failure or a vanished transcription) and its next completion will come from the
        # poller or the web hook. Giving up on it would fail a healthy job.
        log.info(
            "%s: poison completion message for a job that is %s again; dropped",
            jobs.describe(record),
            record.state,
        )
        report.dropped += 1
        _delete(poison, message)
        return
    if parsed.redrives < limit:
        with storage_errors("re-drive completion"):
            rt.completion_queue.send_message(completion_body(parsed.job_key, parsed.redrives + 1))
        _delete(poison, message)
        report.completions_redriven.append(parsed.job_key)
        log.warning(
            "%s: completion failed repeatedly; re-driven from the poison queue (%d of %d)",
            jobs.describe(record),
            parsed.redrives + 1,
            limit,
        )
        return
    _give_up(
        rt,
        record,
        code=COMPLETION_FAILED_CODE,
        message=(
            f"writing the transcripts failed on every try ({parsed.redrives + 1} rounds of "
            f"retries, POISON_REDRIVE_LIMIT={limit}); the service status was "
            f"{record.service_status or 'unknown'}. See the app's logs for this job key"
        ),
    )
    _delete(poison, message)
    report.completions_given_up.append(parsed.job_key)


def _give_up(rt: Runtime, record: JobRecord, *, code: str, message: str) -> None:
    try:
        fail_job(rt, record, reason_code=code, message=message)
    except JobConflictError:
        # Someone moved the job meanwhile; if it finished, there is nothing left to report.
        latest = rt.store.get(record.key)
        if latest is None or not latest.state.is_terminal:
            raise


def redrive_blob_trigger_poison(
    rt: Runtime,
    report: RedriveReport,
    *,
    max_messages: int = 500,
    visibility_s: int = VISIBILITY_S,
) -> None:
    """Submit blobs the blob trigger gave up on (our input container only), a bounded number
    of times; other containers' messages are left as they were."""
    limit = rt.settings.poison_redrive_limit
    poison = rt.storage.queue.get_queue_client(BLOB_TRIGGER_POISON_QUEUE)
    for message in _messages(poison, max_messages, visibility_s):
        try:
            _redrive_blob(rt, poison, message, limit, report, visibility_s)
        except (StorageTransientError, TranscriptionAppError, AzureError) as exc:
            report.errors += 1
            log.warning("sweep: blob-trigger poison message %s not handled: %s", message.id, exc)


def _redrive_blob(  # noqa: PLR0917 - internal step of the loop above
    rt: Runtime,
    poison: QueueClient,
    message: QueueMessage,
    limit: int,
    report: RedriveReport,
    visibility_s: int,
) -> None:
    try:
        parsed = parse_blob_trigger_poison(str(message.content))
    except PoisonMessageError:
        _put_back(poison, message)  # not ours to judge: the queue is shared by every app
        return
    if parsed.container != rt.settings.input_container:
        _put_back(poison, message)
        return
    shown = f"blob={parsed.container}/{parsed.name}"
    blob = rt.storage.blob_client(parsed.container, parsed.name)
    try:
        handle_new_blob(rt, blob)
    except Exception as exc:  # noqa: BLE001 - any failure counts as one more failed round
        _after_failed_redrive(
            rt,
            poison=poison,
            message=message,
            parsed=parsed,
            limit=limit,
            report=report,
            exc=exc,
            visibility_s=visibility_s,
        )
        return
    _delete(poison, message)
    report.blobs_redriven.append(parsed.name)
    log.warning("%s: blob trigger had given up; submitted by the sweep", shown)


def _after_failed_redrive(
    rt: Runtime,
    *,
    poison: QueueClient,
    message: QueueMessage,
    parsed: BlobTriggerPoison,
    limit: int,
    report: RedriveReport,
    exc: Exception,
    visibility_s: int,
) -> None:
    rounds = parsed.redrives + 1
    if rounds < limit:
        log.warning(
            "blob=%s/%s: submit failed again (%d of %d): %s",
            parsed.container,
            parsed.name,
            rounds,
            limit,
            exc,
        )
        with storage_errors("update poison message"):
            poison.update_message(
                message.id,
                message.pop_receipt,
                content=parsed.with_redrives(rounds),
                visibility_timeout=visibility_s,
            )
        report.errors += 1
        return
    record = _record_for(rt, parsed)
    if record is not None and not record.state.is_terminal:
        _give_up(
            rt,
            record,
            code=SUBMIT_FAILED_CODE,
            message=(
                f"submitting the recording failed on every try ({rounds} rounds after the "
                f"blob trigger's own retries); last error: {type(exc).__name__}: {exc}"
            ),
        )
    _delete(poison, message)
    report.blobs_given_up.append(parsed.name)


def _record_for(rt: Runtime, parsed: BlobTriggerPoison) -> JobRecord | None:
    """The job of the poisoned blob version, created when the trigger never got that far."""
    blob = rt.storage.blob_client(parsed.container, parsed.name)
    try:
        with storage_errors("read input properties"):
            props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None  # deleted since: nothing left to report on
    etag = header_etag(parsed.etag or str(props.etag))
    key = jobs.job_key(parsed.container, parsed.name, etag)
    record = rt.store.get(key)
    if record is not None:
        return record
    now = rt.clock()
    fresh = jobs.new_job(
        container=parsed.container,
        name=parsed.name,
        etag=etag,
        size=int(props.size),
        now=now,
        timeout=timedelta(hours=rt.settings.job_timeout_hours),
        lease=timedelta(0),
    )
    return rt.store.create(fresh) or rt.store.get(key)


def _put_back(poison: QueueClient, message: QueueMessage) -> None:
    """Leave a message that is not ours as it was: it only stays hidden for this pass
    (releasing it at once would hand it back to this same pass, again and again)."""
    log.debug(
        "sweep: poison message %s in %s is not ours; left alone", message.id, poison.queue_name
    )
