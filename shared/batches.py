"""Batches: many recordings in one Speech job, as a record with pure transitions.

A batch is formed from queued jobs (`shared.jobs`, state ``queued``) that share their
submission properties (mono or stereo). Its key is the transcription's ``displayName``,
so a crash between the POST and recording it is adopted by name, as for single jobs.
No I/O here; `shared.batch_store` writes each transition conditionally on the ETag.

::

    posting ──posted──▶ submitted ──finished──▶ completing ──closed──▶ done
       │                    │                                         ▲
       └────────────────────┴──────closed (never posted / vanished)───┘

Order, for crash safety: the batch record (``posting``, its member keys) is written first,
then each member is marked ``batched`` with the batch key, then the POST, then ``posted``.
A ``posting`` batch whose lease ran out is looked up by displayName: found, it is adopted;
not found, its members go back to the queue and it is closed. A batch is closed (``done``)
only once every member is safe (terminal, or back in the queue / deferred on its own) and
the service job is deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from shared.errors import TranscriptionAppError

__all__ = [
    "BATCH_PREFIX",
    "BatchRecord",
    "BatchState",
    "IllegalBatchTransitionError",
    "batch_key",
    "close",
    "describe_batch",
    "finished",
    "is_batch_key",
    "new_batch",
    "observed",
    "posted",
    "renew",
    "with_members",
]

BATCH_PREFIX: Final = "tb-"


class BatchState(StrEnum):
    """Where a batch is in its life; see the module docstring."""

    POSTING = "posting"  # recorded, members being marked, POST maybe sent
    SUBMITTED = "submitted"  # the service accepted it (status NotStarted/Running)
    COMPLETING = "completing"  # the service finished it; members' outputs being written
    DONE = "done"  # every member safe, the service job deleted (or never made)


class IllegalBatchTransitionError(TranscriptionAppError):
    """A batch transition from a state that does not allow it (a bug, or a stale record)."""


@dataclass(frozen=True)
class BatchRecord:
    """One multi-recording Speech job. Times are timezone-aware UTC.

    `members` are the job keys in the order of the POST's ``contentUrls`` (order is never
    used to match results: the source URL is). `channels` is 1 (mono) or 2 (stereo).
    """

    key: str
    state: BatchState
    members: tuple[str, ...]
    channels: int
    created: datetime
    updated: datetime
    deadline: datetime
    next_check_at: datetime | None = None
    transcription_id: str = ""
    transcription_url: str = ""
    service_status: str = ""
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    version: str | None = None

    @property
    def is_active(self) -> bool:
        """True until the batch is done."""
        return self.state is not BatchState.DONE


def batch_key(members: Iterable[str], now: datetime) -> str:
    """A key for a batch of `members` formed at `now` (also its transcription displayName).

    The time is part of it: the same recordings batched again after an abandoned attempt
    get a new key, so the old attempt's record never collides with the new one.
    """
    text = "\n".join(sorted(members)) + "\n" + now.isoformat()
    return BATCH_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:40]


def is_batch_key(key: str) -> bool:
    """True for a batch key (a transcription displayName of a batch)."""
    return key.startswith(BATCH_PREFIX)


def describe_batch(batch: BatchRecord) -> str:
    """``batch=<key> files=<n>``: the prefix of every log line about a batch."""
    return f"batch={batch.key} files={len(batch.members)}"


def new_batch(
    members: Iterable[str], *, channels: int, now: datetime, lease: timedelta, timeout: timedelta
) -> BatchRecord:
    """A batch about to be posted; after `lease` the poller recovers it if still posting."""
    keys = tuple(members)
    if not keys:
        raise ValueError("a batch needs at least one member")
    if len(set(keys)) != len(keys):
        raise ValueError("a batch must not hold a job twice")
    return BatchRecord(
        key=batch_key(keys, now),
        state=BatchState.POSTING,
        members=keys,
        channels=channels,
        created=now,
        updated=now,
        deadline=now + timeout,
        next_check_at=now + lease,
    )


def _move(
    batch: BatchRecord,
    allowed: frozenset[BatchState],
    target: BatchState,
    now: datetime,
    **changes: object,
) -> BatchRecord:
    if batch.state not in allowed:
        raise IllegalBatchTransitionError(
            f"{describe_batch(batch)}: cannot go from {batch.state} to {target}"
        )
    return dataclasses.replace(batch, state=target, updated=now, **changes)  # type: ignore[arg-type]


_B = BatchState
_ACTIVE: Final = frozenset({_B.POSTING, _B.SUBMITTED, _B.COMPLETING})


def with_members(batch: BatchRecord, members: Iterable[str], *, now: datetime) -> BatchRecord:
    """Still posting, now with only the members this run could mark (before the POST)."""
    keys = tuple(members)
    if not set(keys) <= set(batch.members):
        raise ValueError("a batch can only lose members before its POST, never gain them")
    return _move(batch, frozenset({_B.POSTING}), _B.POSTING, now, members=keys)


def posted(
    batch: BatchRecord,
    *,
    now: datetime,
    transcription_id: str,
    transcription_url: str,
    first_check: timedelta,
) -> BatchRecord:
    """The service accepted the batch (or an earlier POST's transcription was found)."""
    if "?" in transcription_url:
        raise ValueError("transcription_url must be stored without its query string")
    return _move(
        batch,
        frozenset({_B.POSTING}),
        _B.SUBMITTED,
        now,
        transcription_id=transcription_id,
        transcription_url=transcription_url,
        submitted_at=now,
        service_status="NotStarted",
        next_check_at=now + first_check,
    )


def observed(
    batch: BatchRecord, *, now: datetime, service_status: str, next_check_at: datetime
) -> BatchRecord:
    """The service says the batch is still NotStarted or Running."""
    return _move(
        batch,
        frozenset({_B.SUBMITTED}),
        _B.SUBMITTED,
        now,
        service_status=service_status,
        next_check_at=next_check_at,
    )


def finished(
    batch: BatchRecord,
    *,
    now: datetime,
    service_status: str,
    lease: timedelta,
    error_code: str = "",
    error_message: str = "",
) -> BatchRecord:
    """The service finished the batch: its completion is enqueued after this write."""
    return _move(
        batch,
        frozenset({_B.SUBMITTED}),
        _B.COMPLETING,
        now,
        service_status=service_status,
        finished_at=now,
        next_check_at=now + lease,
        error_code=error_code,
        error_message=error_message,
    )


def renew(batch: BatchRecord, *, now: datetime, until: datetime) -> BatchRecord:
    """Look at the batch again at `until` (a completion re-enqueued, a POST to retry)."""
    return _move(batch, _ACTIVE, batch.state, now, next_check_at=until)


def close(batch: BatchRecord, *, now: datetime, reason: str = "") -> BatchRecord:
    """Every member is safe and the service job is gone (or was never made)."""
    return _move(batch, _ACTIVE, _B.DONE, now, next_check_at=None, error_message=reason)
