"""The job state machine: one record per recording version, pure transitions.

A job is one version of one input blob (container + name + ETag); its key is also the
Table RowKey and the transcription's ``displayName``, so a duplicate trigger, a crashed
run and a service-side orphan all find the same job. No I/O here: the functions below take
a `JobRecord` and return the next one, or raise `IllegalTransitionError`. The adapter
(`shared.job_store`) writes each result as a conditional update (If-Match the record's
`version`), so two runs racing on one job cannot both win.

::

    received ──submitted──▶ submitted ──observed──▶ running
       │  ▲                    │                      │
       │  └─claim (resume)     └──────finished────────┴──▶ completing ──completed──▶ done
       │                                                     │   ▲
       ├──rejected──▶ rejected          (vanished / transient │   └─ lease renewed (re-enqueue)
       │                                 service failure)     ▼
       └──deferred──▶ deferred ◀──────────────────────── deferred ──claim / submitted──▶ ...
    any non-terminal ──failed──▶ failed          (permanent error, out of attempts, timed out)

    Batching (``BATCH_MAX_FILES`` > 1, `shared.batcher`), while recordings arrive faster than
    they can be submitted one by one:

    received/deferred ──queued──▶ queued ──batched──▶ batched ──completed──▶ done
                                    ▲                    │
                                    └────unbatched───────┤  (the batch was never posted)
                                                         └──deferred──▶ deferred (its file
                                                            failed: retried on its own)

A batched job has no transcription of its own: its batch record (`shared.batches`) holds the
shared one, so cleaning up a member (fail, reject) never deletes the other members' job.

`next_check_at` is the one clock every active state uses: when the poller may look at the
job again (received/deferred: resume or resubmit; submitted/running: ask the service;
completing: re-enqueue a completion that never finished). A run that claims work pushes it
forward first, which makes that claim a lease.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from shared.errors import TranscriptionAppError
from shared.job_history import Transition

__all__ = [
    "ACTIVE_STATES",
    "KEY_PREFIX",
    "RETRY_CODE",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Event",
    "IllegalTransitionError",
    "JobRecord",
    "JobState",
    "attempts_left",
    "batched",
    "claim",
    "complete",
    "defer",
    "deployment_tag",
    "describe",
    "fail",
    "finish",
    "is_due",
    "is_past_deadline",
    "job_key",
    "must_look_up",
    "new_job",
    "observe",
    "outputs_saved",
    "queue",
    "reject",
    "renew_lease",
    "retry",
    "submitted",
    "unbatch",
    "with_audio",
]

KEY_PREFIX: Final = "tj-"


class JobState(StrEnum):
    """Where a job is in its life; see the module docstring for the graph."""

    RECEIVED = "received"  # recorded, input being checked and submitted
    SUBMITTED = "submitted"  # the service accepted it; status not seen yet
    RUNNING = "running"  # the service reported NotStarted or Running
    COMPLETING = "completing"  # the service finished; outputs/report being written
    DEFERRED = "deferred"  # waiting for a retry time, then (re)submitted by the poller
    QUEUED = "queued"  # input checked; waits (BATCH_WINDOW_SECONDS at most) to share a job
    BATCHED = "batched"  # one recording of a multi-file job (`batch_key`); no job of its own
    DONE = "done"  # transcripts written, server-side job deleted
    FAILED = "failed"  # error report written (service failure, out of attempts, timeout)
    REJECTED = "rejected"  # the input is not transcribable; error report written

    @property
    def is_terminal(self) -> bool:
        """True for done, failed and rejected: nothing will ever change the job again."""
        return self in TERMINAL_STATES


TERMINAL_STATES: Final = frozenset({JobState.DONE, JobState.FAILED, JobState.REJECTED})
ACTIVE_STATES: Final = frozenset(set(JobState) - TERMINAL_STATES)


class Event(StrEnum):
    """What happened to a job; each event is allowed only from the states in TRANSITIONS."""

    CLAIM = "claim"
    SUBMITTED = "submitted"
    OBSERVED = "observed"
    FINISHED = "finished"
    RENEW_LEASE = "renew_lease"
    COMPLETED = "completed"
    DEFERRED = "deferred"
    REJECTED = "rejected"
    FAILED = "failed"
    RETRY = "retry"
    QUEUED = "queued"
    BATCHED = "batched"
    UNBATCHED = "unbatched"


_S = JobState
# event -> (states it may happen in, state it leads to; None = stays where it is)
TRANSITIONS: Final[dict[Event, tuple[frozenset[JobState], JobState | None]]] = {
    Event.CLAIM: (frozenset({_S.RECEIVED, _S.DEFERRED}), None),
    Event.SUBMITTED: (frozenset({_S.RECEIVED, _S.DEFERRED}), _S.SUBMITTED),
    Event.OBSERVED: (frozenset({_S.SUBMITTED, _S.RUNNING}), _S.RUNNING),
    Event.FINISHED: (frozenset({_S.SUBMITTED, _S.RUNNING}), _S.COMPLETING),
    Event.RENEW_LEASE: (frozenset({_S.COMPLETING}), _S.COMPLETING),
    # A batched job is done once its own outputs are written (its batch deletes the job).
    Event.COMPLETED: (frozenset({_S.COMPLETING, _S.BATCHED}), _S.DONE),
    Event.DEFERRED: (
        frozenset({_S.RECEIVED, _S.DEFERRED, _S.SUBMITTED, _S.RUNNING, _S.COMPLETING, _S.BATCHED}),
        _S.DEFERRED,
    ),
    Event.QUEUED: (frozenset({_S.RECEIVED, _S.DEFERRED}), _S.QUEUED),
    Event.BATCHED: (frozenset({_S.QUEUED}), _S.BATCHED),
    Event.UNBATCHED: (frozenset({_S.BATCHED}), _S.QUEUED),
    # The input itself can turn out unusable at any stage (e.g. overwritten by a newer upload).
    Event.REJECTED: (ACTIVE_STATES, _S.REJECTED),
    Event.FAILED: (ACTIVE_STATES, _S.FAILED),
    # An operator asked for a new attempt (`shared.ops.retry`): the only way out of a
    # terminal state, and only out of `failed` (done and rejected are final).
    Event.RETRY: (frozenset({_S.FAILED}), _S.DEFERRED),
}


class IllegalTransitionError(TranscriptionAppError):
    """An event arrived in a state that does not allow it (a bug, or a stale record)."""

    def __init__(self, record: JobRecord, event: Event) -> None:
        self.state = record.state
        self.event = event
        super().__init__(
            f"{describe(record)}: event {event} is not allowed in state {record.state}"
        )


@dataclass(frozen=True)
class JobRecord:
    """Everything the app knows about one job. Times are timezone-aware UTC.

    `transcription_url` never has a query string. `version` is the storage ETag of the row
    this record was read from (None before the first write); transitions carry it along so
    the store can make the write conditional on it.
    """

    key: str
    state: JobState
    container: str
    blob_name: str
    blob_etag: str
    blob_size: int
    created: datetime
    updated: datetime
    deadline: datetime
    next_check_at: datetime | None = None
    attempts: int = 0
    channels: int | None = None
    audio_format: str = ""
    duration_s: float | None = None
    transcription_id: str = ""
    transcription_url: str = ""
    service_status: str = ""
    submitted_at: datetime | None = None
    checked_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    # The outcome of an earlier POST is unknown (crash, timeout): before submitting again,
    # look for a transcription whose displayName is this job's key.
    needs_lookup: bool = False
    # Completing: every output is written, only the server-side DELETE is left (it was
    # throttled or failed); a later completion run just deletes and marks the job done.
    outputs_written: bool = False
    # The last transitions (`shared.job_history`), appended by the store on each state change.
    history: tuple[Transition, ...] = ()
    # Batched: the key of the batch (`shared.batches`) whose transcription holds this job.
    batch_key: str = ""
    version: str | None = None

    @property
    def is_active(self) -> bool:
        """True while the job still needs work (the poller's table query selects these)."""
        return not self.state.is_terminal


def job_key(container: str, name: str, etag: str) -> str:
    """The idempotency key of one blob version: the same blob version always maps to one job.

    A hash, because blob names may hold characters a Table RowKey forbids (``/ \\ # ?``) and
    may be 1,024 characters long; it doubles as the transcription's ``displayName``.
    """
    digest = hashlib.sha256(f"{container}/{name}/{etag}".encode()).hexdigest()
    return KEY_PREFIX + digest[:40]


def deployment_tag(storage_account: str, input_container: str) -> str:
    """The ``description`` every transcription of this deployment carries.

    A Speech resource may serve other workloads (or other deployments of this app); the
    poller lists only transcriptions whose description is this tag. One deployment is one
    input container of one storage account: two apps watching the same container would
    transcribe the same recordings anyway. Transcriptions submitted by an older version
    have no description; the poller still finds them by id (one GET each).
    """
    return f"speech-batch-functions: {storage_account}/{input_container}"


def describe(record: JobRecord) -> str:
    """``job=<key> blob=<container>/<name>``: the prefix of every log line about a job."""
    return f"job={record.key} blob={record.container}/{record.blob_name}"


def new_job(
    *,
    container: str,
    name: str,
    etag: str,
    size: int,
    now: datetime,
    timeout: timedelta,
    lease: timedelta,
) -> JobRecord:
    """A freshly received job; its creator holds it for `lease` before others may resume it."""
    return JobRecord(
        key=job_key(container, name, etag),
        state=JobState.RECEIVED,
        container=container,
        blob_name=name,
        blob_etag=etag,
        blob_size=size,
        created=now,
        updated=now,
        deadline=now + timeout,
        next_check_at=now + lease,
    )


def is_due(record: JobRecord, now: datetime) -> bool:
    """True when the poller may act on an active job now (its next_check_at has passed)."""
    return record.is_active and (record.next_check_at is None or record.next_check_at <= now)


def is_past_deadline(record: JobRecord, now: datetime) -> bool:
    """True when an active job has outlived JOB_TIMEOUT_HOURS."""
    return record.is_active and now >= record.deadline


def _move(record: JobRecord, event: Event, now: datetime, **changes: object) -> JobRecord:
    allowed, target = TRANSITIONS[event]
    if record.state not in allowed:
        raise IllegalTransitionError(record, event)
    state = record.state if target is None else target
    return dataclasses.replace(record, state=state, updated=now, **changes)  # type: ignore[arg-type]


def claim(record: JobRecord, *, now: datetime, lease: timedelta) -> JobRecord:
    """Take over a received/deferred job for (re)submission, holding it for `lease`.

    From the claim on, this run may POST, and a crash (or a storage outage) could hide the
    outcome: the claimed record is stored with `needs_lookup`, so whoever resumes it next
    looks for the transcription by displayName first. Whether *this* run must look is
    `must_look_up` of the record as it was before the claim.
    """
    return _move(record, Event.CLAIM, now, next_check_at=now + lease, needs_lookup=True)


def must_look_up(record: JobRecord) -> bool:
    """Before (re)submitting `record` (as read, before a claim): could a POST of an earlier
    run have created a transcription nobody recorded?

    True when a run said so (`needs_lookup`), or when the job is still `received`: its
    creator stopped somewhere between recording the job and recording the submission.
    """
    return record.needs_lookup or record.state is JobState.RECEIVED


def submitted(
    record: JobRecord,
    *,
    now: datetime,
    transcription_id: str,
    transcription_url: str,
    first_check: timedelta,
    channels: int | None = None,
    audio_format: str | None = None,
    duration_s: float | None = None,
) -> JobRecord:
    """The service accepted the job (or an earlier POST's transcription was found).

    Counts one attempt. `transcription_url` must not carry a query string.
    """
    if "?" in transcription_url:
        raise ValueError("transcription_url must be stored without its query string")
    return _move(
        record,
        Event.SUBMITTED,
        now,
        transcription_id=transcription_id,
        transcription_url=transcription_url,
        submitted_at=now,
        attempts=record.attempts + 1,
        next_check_at=now + first_check,
        needs_lookup=False,
        outputs_written=False,
        service_status="NotStarted",
        channels=record.channels if channels is None else channels,
        audio_format=record.audio_format if audio_format is None else audio_format,
        duration_s=record.duration_s if duration_s is None else duration_s,
        error_code="",
        error_message="",
    )


def observe(
    record: JobRecord, *, now: datetime, service_status: str, next_check_at: datetime | None
) -> JobRecord:
    """The service says the job is still NotStarted or Running."""
    return _move(
        record,
        Event.OBSERVED,
        now,
        service_status=service_status,
        checked_at=now,
        next_check_at=next_check_at,
    )


def finish(
    record: JobRecord,
    *,
    now: datetime,
    service_status: str,
    lease: timedelta,
    error_code: str = "",
    error_message: str = "",
) -> JobRecord:
    """The service finished (Succeeded or Failed): hand the job to completion.

    The completion message is sent after this write; if it is lost, the lease expiring
    makes the poller send it again.
    """
    return _move(
        record,
        Event.FINISHED,
        now,
        service_status=service_status,
        checked_at=now,
        finished_at=now,
        next_check_at=now + lease,
        error_code=error_code,
        error_message=error_message,
    )


def renew_lease(record: JobRecord, *, now: datetime, lease: timedelta) -> JobRecord:
    """A completion is (re-)enqueued: wait `lease` before enqueueing it again."""
    return _move(record, Event.RENEW_LEASE, now, next_check_at=now + lease)


def outputs_saved(record: JobRecord, *, now: datetime, retry_at: datetime) -> JobRecord:
    """Every output is written but the DELETE failed: stay completing, delete at `retry_at`.

    The job stays active (so the poller re-enqueues it when due) until the server-side
    transcription is gone; the outputs are not written again.
    """
    return _move(record, Event.RENEW_LEASE, now, next_check_at=retry_at, outputs_written=True)


def complete(record: JobRecord, *, now: datetime) -> JobRecord:
    """Outputs are written and the server-side job is deleted."""
    return _move(record, Event.COMPLETED, now, next_check_at=None, finished_at=now)


def defer(
    record: JobRecord,
    *,
    now: datetime,
    until: datetime,
    reason_code: str,
    reason: str,
    needs_lookup: bool = False,
) -> JobRecord:
    """Wait until `until`, then (re)submit: throttling, transient errors, vanished jobs.

    Leaving a submitted job behind (it vanished, or failed transiently) forgets its
    transcription: the next submission creates a new one. `needs_lookup` says an earlier
    POST may have succeeded unseen.
    """
    leaving_service = record.state in (_S.SUBMITTED, _S.RUNNING, _S.COMPLETING, _S.BATCHED)
    return _move(
        record,
        Event.DEFERRED,
        now,
        next_check_at=until,
        error_code=reason_code,
        error_message=reason,
        needs_lookup=needs_lookup,
        transcription_id="" if leaving_service else record.transcription_id,
        batch_key="",
        transcription_url="" if leaving_service else record.transcription_url,
        service_status="" if leaving_service else record.service_status,
    )


def reject(record: JobRecord, *, now: datetime, reason_code: str, reason: str) -> JobRecord:
    """The input cannot be transcribed (not audio, empty, too large...) or was superseded."""
    return _move(
        record,
        Event.REJECTED,
        now,
        error_code=reason_code,
        error_message=reason,
        next_check_at=None,
        finished_at=now,
    )


def fail(record: JobRecord, *, now: datetime, error_code: str, error_message: str) -> JobRecord:
    """Give up: permanent service error, out of attempts, or timed out."""
    return _move(
        record,
        Event.FAILED,
        now,
        error_code=error_code,
        error_message=error_message,
        next_check_at=None,
        finished_at=now,
    )


def with_audio(
    record: JobRecord, *, channels: int, audio_format: str, duration_s: float | None
) -> JobRecord:
    """The header facts learnt by sniffing (no state change, not written on its own)."""
    return dataclasses.replace(
        record, channels=channels, audio_format=audio_format, duration_s=duration_s
    )


def queue(record: JobRecord, *, now: datetime, until: datetime) -> JobRecord:
    """Wait to share a Speech job with other recordings; `until` is when the poller forms a
    batch for it if no batch run has come by then (a lost wake-up)."""
    return _move(record, Event.QUEUED, now, next_check_at=until, needs_lookup=False)


def batched(record: JobRecord, *, now: datetime, batch_key: str, lease: timedelta) -> JobRecord:
    """Taken into batch `batch_key`, before its POST. Counts one attempt.

    `lease`: if the batch record never appears (its creator crashed first), the poller puts
    the job back in the queue after this.
    """
    if not batch_key:
        raise ValueError("batch_key must not be empty")
    return _move(
        record,
        Event.BATCHED,
        now,
        batch_key=batch_key,
        attempts=record.attempts + 1,
        submitted_at=now,
        next_check_at=now + lease,
        error_code="",
        error_message="",
    )


def unbatch(record: JobRecord, *, now: datetime) -> JobRecord:
    """Back to the queue, due now: its batch was never posted (the attempt is not counted)."""
    return _move(
        record,
        Event.UNBATCHED,
        now,
        batch_key="",
        attempts=max(record.attempts - 1, 0),
        next_check_at=now,
    )


def attempts_left(record: JobRecord, max_attempts: int) -> bool:
    """True when the job may be submitted once more under MAX_JOB_ATTEMPTS."""
    return record.attempts < max_attempts


# The reason code a job carries from an operator's retry until its next outcome.
RETRY_CODE: Final = "RetryRequested"


def retry(record: JobRecord, *, now: datetime, timeout: timedelta) -> JobRecord:
    """A new attempt for a `failed` job: deferred and due at once, the poller submits it.

    Attempts start again from zero and the deadline from now (the operator fixed the cause,
    or judged the failure transient); the earlier failure stays in the history.
    """
    return _move(
        record,
        Event.RETRY,
        now,
        next_check_at=now,
        deadline=now + timeout,
        attempts=0,
        finished_at=None,
        error_code=RETRY_CODE,
        error_message=f"retry requested after: {record.error_code} {record.error_message}".strip(),
        needs_lookup=False,
        outputs_written=False,
        batch_key="",
        transcription_id="",
        transcription_url="",
        service_status="",
    )
