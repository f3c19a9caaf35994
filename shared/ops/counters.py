"""Per-hour counter rows: what they hold, how one job adds to them, and how they add up.

One row per hour and shard in the job table, PartitionKey ``stats``, RowKey
``YYYYMMDDHH-SS``. A job is counted in the hour it *ended* (done, failed, rejected) and in
the shard its key hashes to, so concurrent completions rarely write the same row (each row is
a read-modify-write conditional on its ETag). Pure: the row layout, the delta one change
makes, sums, and percentiles from the turnaround histogram.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.jobs import JobRecord, JobState

__all__ = [
    "PARTITION",
    "SHARDS",
    "TURNAROUND_BOUNDS",
    "HourCounts",
    "change_delta",
    "hour_of",
    "hour_range_filter",
    "percentile",
    "row_key",
    "shard_of",
]

PARTITION: Final = "stats"
SHARDS: Final = 8
# Upper bounds (seconds) of the turnaround histogram's buckets; the last bucket is open.
# Log-spaced: from a few seconds (the local emulator) to the 30-hour job timeout.
TURNAROUND_BOUNDS: Final = (
    5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400,
)  # fmt: skip
_OUTCOMES: Final = {JobState.DONE: "Done", JobState.FAILED: "Failed", JobState.REJECTED: "Rejected"}
_REASON_PREFIX: Final = "Reason_"
_NOT_A_NAME: Final = re.compile(r"[^A-Za-z0-9]")


def hour_of(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def shard_of(key: str) -> int:
    """The shard a job's counts go to (stable, spread evenly)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % SHARDS


def row_key(hour: datetime, shard: int) -> str:
    """``YYYYMMDDHH-SS``: rows sort by hour, so a time window is one RowKey range."""
    return f"{hour_of(hour):%Y%m%d%H}-{shard:02d}"


def hour_range_filter(start: datetime, end: datetime) -> str:
    """The Table filter selecting the counter rows of the hours from `start` to before `end`."""
    return (
        f"PartitionKey eq '{PARTITION}' and RowKey ge '{hour_of(start):%Y%m%d%H}' "
        f"and RowKey lt '{hour_of(end):%Y%m%d%H}'"
    )


def _bucket(seconds: float) -> int:
    for i, bound in enumerate(TURNAROUND_BOUNDS):
        if seconds <= bound:
            return i
    return len(TURNAROUND_BOUNDS)


def reason_property(code: str) -> str:
    """The property counting a reason code (Table property names are identifiers)."""
    return _REASON_PREFIX + (_NOT_A_NAME.sub("_", code or "Unknown")[:200])


@dataclass
class HourCounts:
    """The counts of one hour (one shard's row, or their sum)."""

    done: int = 0
    failed: int = 0
    rejected: int = 0
    audio_seconds: float = 0.0
    speech_requests: int = 0
    submissions: int = 0
    turnaround: list[int] = field(default_factory=lambda: [0] * (len(TURNAROUND_BOUNDS) + 1))
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def ended(self) -> int:
        """Jobs that ended in this hour, whatever the outcome."""
        return self.done + self.failed + self.rejected

    def add(self, other: HourCounts) -> None:
        """Add `other`'s counts to these."""
        self.done += other.done
        self.failed += other.failed
        self.rejected += other.rejected
        self.audio_seconds += other.audio_seconds
        self.speech_requests += other.speech_requests
        self.submissions += other.submissions
        self.turnaround = [a + b for a, b in zip(self.turnaround, other.turnaround, strict=True)]
        self.reasons.update(other.reasons)  # signed: a retry's delta takes a failure back
        for code in [c for c, n in self.reasons.items() if n == 0]:
            del self.reasons[code]

    def to_properties(self) -> dict[str, Any]:
        """The row's properties (without PartitionKey/RowKey)."""
        props: dict[str, Any] = {
            "Done": self.done,
            "Failed": self.failed,
            "Rejected": self.rejected,
            "AudioSeconds": float(self.audio_seconds),
            "SpeechRequests": self.speech_requests,
            "Submissions": self.submissions,
        }
        props.update({f"T{i:02d}": n for i, n in enumerate(self.turnaround)})
        props.update({reason_property(code): n for code, n in self.reasons.items() if n})
        return props

    @classmethod
    def from_properties(cls, entity: Mapping[str, Any]) -> HourCounts:
        """The counts a row holds (missing properties count zero)."""

        def number(name: str) -> int:
            value = entity.get(name) or 0
            return int(getattr(value, "value", value))

        return cls(
            done=number("Done"),
            failed=number("Failed"),
            rejected=number("Rejected"),
            audio_seconds=float(entity.get("AudioSeconds") or 0.0),
            speech_requests=number("SpeechRequests"),
            submissions=number("Submissions"),
            turnaround=[number(f"T{i:02d}") for i in range(len(TURNAROUND_BOUNDS) + 1)],
            reasons=Counter(
                {
                    name.removeprefix(_REASON_PREFIX): number(name)
                    for name in entity
                    if name.startswith(_REASON_PREFIX) and number(name)
                }
            ),
        )


def _outcome_counts(record: JobRecord, sign: int) -> HourCounts:
    counts = HourCounts()
    if record.state is JobState.DONE:
        counts.done = sign
        counts.audio_seconds = sign * (record.duration_s or 0.0)
        counts.submissions = sign * record.attempts
        end = record.finished_at or record.updated
        counts.turnaround[_bucket((end - record.created).total_seconds())] = sign
    elif record.state in (JobState.FAILED, JobState.REJECTED):
        if record.state is JobState.FAILED:
            counts.failed = sign
        else:
            counts.rejected = sign
        counts.submissions = sign * record.attempts
        counts.reasons[record.error_code or "Unknown"] = sign
    return counts


def change_delta(previous: JobRecord | None, record: JobRecord) -> dict[datetime, HourCounts]:
    """What one written state change adds to which hour's counts.

    Ending (done/failed/rejected) adds one to the hour it ended in. Leaving `failed` (an
    operator's retry) takes that failure back from its hour, so the counts always describe
    each recording's current outcome once, which is what `reindex` rebuilds from the records.
    """
    deltas: dict[datetime, HourCounts] = {}
    if record.state in _OUTCOMES:
        deltas[hour_of(record.finished_at or record.updated)] = _outcome_counts(record, 1)
    if previous is not None and previous.state in _OUTCOMES and record.state not in _OUTCOMES:
        hour = hour_of(previous.finished_at or previous.updated)
        deltas.setdefault(hour, HourCounts()).add(_outcome_counts(previous, -1))
    return deltas


def counts_of(records: Iterable[JobRecord]) -> dict[datetime, HourCounts]:
    """The per-hour counts a set of job records adds up to (what `reindex` writes)."""
    hours: dict[datetime, HourCounts] = {}
    for record in records:
        for hour, counts in change_delta(None, record).items():
            hours.setdefault(hour, HourCounts()).add(counts)
    return hours


def percentile(histogram: list[int], fraction: float) -> float | None:
    """The `fraction` quantile (0-1) of the turnaround histogram, in seconds; None if empty.

    Interpolated linearly inside the bucket it falls in, so it is exact to the bucket's
    width (a few seconds at the low end, hours at the top); the open last bucket reports
    its lower bound.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = 0 if i == 0 else TURNAROUND_BOUNDS[i - 1]
            if i == len(TURNAROUND_BOUNDS):
                return float(low)
            high = TURNAROUND_BOUNDS[i]
            return low + (high - low) * max(rank - seen, 0) / count
        seen += count
    return float(TURNAROUND_BOUNDS[-1])


def hours_back(now: datetime, hours: int) -> list[datetime]:
    """The `hours` whole UTC hours ending with the current one, oldest first."""
    current = hour_of(now)
    return [current - timedelta(hours=h) for h in range(hours - 1, -1, -1)]
