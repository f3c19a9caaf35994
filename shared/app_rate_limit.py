"""One Speech quota for the whole app: a sliding window kept in one Table storage row.

The Speech quota belongs to the resource, but a scaled-out app runs many processes (on
Flex Consumption each function scales out on its own instances), and a limiter per
process lets N instances send N times the quota. `TableRateLimiter` keeps the window in
storage instead, where every instance sees it:

- **One entity per Speech endpoint** (table ``SPEECH_QUOTA_TABLE``, PartitionKey
  ``speech-quota``, RowKey the endpoint). It holds the wall-clock times of the calls
  still in the window (``Sent``, ``Submitted``: packed doubles, 8 bytes a call; a
  property holds 64 KiB, so up to 8,000 calls per window) and ``PausedUntil``, the
  shared pause a 429 sets. The exact times, not counts per bucket: the decision is the
  in-process limiter's own (`shared.rate_limit.window_delay`), priorities included, with
  no rounding that would cost throughput.
- **Optimistic concurrency.** Taking a slot is a read-decide-write with ``If-Match`` on
  the entity's ETag; a writer that lost the race re-reads and decides again. The last
  entity read is cached: while nobody else writes, a grant is tried against it directly
  (one storage operation), and a "wait" computed from it needs no storage at all, since a
  stale copy can only hold *fewer* calls and an *earlier* pause than the truth. After a
  lost race the limiter reads before deciding, until a read finds the entity unchanged
  since its own copy (under contention a write from a stale copy would only lose again:
  a burst through 3 instances cost 2.1 storage operations per call this way, 3.4 without).
- **A 429 pauses everyone.** `pause` raises ``PausedUntil`` in the entity (never
  lowers it); every other instance's next write then fails its ETag check, re-reads and
  sees the pause.
- **Clocks.** Times are wall-clock seconds from each instance; the window is lengthened
  by `margin` (``_CLOCK_MARGIN_S``) to absorb small skew between hosts and the spread
  between taking a slot and the request reaching Speech.
- **Local fallback.** When storage cannot be reached (or refuses), the limiter falls back
  to an in-process `RateLimiter` at the same limit for ``_FALLBACK_S`` seconds, then tries
  storage again. Every shared grant is mirrored into that fallback, so it starts from this
  instance's recent calls, not from an empty window. During an outage the app is then
  limited per instance as before (a 429 still pauses that instance); with storage down
  the job store is down too, so little Speech work happens then anyway.

Works with identity-based connections: it needs only Table data access (the Storage
Table Data Contributor role the app already has for its job table), never a shared key.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.rate_limit import (
    CallPurpose,
    RateLimit,
    RateLimiter,
    acquire_within,
    window_delay,
)
from shared.rate_window import SlidingWindow

__all__ = [
    "PARTITION",
    "QuotaBudget",
    "TableRateLimiter",
    "decode_times",
    "encode_times",
    "quota_limiter",
    "quota_row_key",
]

log = logging.getLogger(__name__)

PARTITION: Final = "speech-quota"
# Seconds added to the window: clock skew between instances, and the moment a slot is
# taken vs the moment the request reaches Speech.
_CLOCK_MARGIN_S: Final = 0.25
# After a storage failure the in-process limiter stands in this long before storage is
# tried again (a storage call that fails slowly must not slow every Speech call).
_FALLBACK_S: Final = 30.0
# Lost ETag races in a row before the caller is told to wait a moment and come back.
_MAX_RACES: Final = 8
_RACE_BACKOFF_S: Final = 0.02
# Storage calls of the limiter fail fast: the fallback is better than a long stall.
_STORAGE_OPTIONS: Final[Mapping[str, Any]] = {
    "retry_total": 1,
    "connection_timeout": 5,
    "read_timeout": 5,
}
_KEY_UNSAFE: Final = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def quota_row_key(endpoint: str) -> str:
    """The RowKey of `endpoint`'s budget: the endpoint with the characters Table keys
    refuse (``/ \\ # ?`` and control characters) replaced by ``_``."""
    return _KEY_UNSAFE.sub("_", endpoint.rstrip("/"))


def encode_times(times: Iterable[float]) -> bytes:
    """Call times as packed little-endian doubles (8 bytes a call)."""
    values = list(times)
    return struct.pack(f"<{len(values)}d", *values)


def decode_times(data: bytes | None) -> list[float]:
    """The call times `encode_times` packed; an empty or missing property holds none.

    A length that is not a multiple of 8 is not ours: ValueError, not a silent guess.
    """
    if not data:
        return []
    if len(data) % 8:
        raise ValueError(f"a packed list of doubles has a multiple of 8 bytes, got {len(data)}")
    return list(struct.unpack(f"<{len(data) // 8}d", data))


@dataclass(frozen=True)
class QuotaBudget:
    """One endpoint's shared window as read from (or to be written to) its entity.

    `etag` is the version read (None: no entity yet). Pure: deciding and recording calls
    touch no storage.
    """

    sent: tuple[float, ...] = ()
    submitted: tuple[float, ...] = ()
    paused_until: float = 0.0
    etag: str | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any], etag: str | None) -> QuotaBudget:
        """The budget an entity holds (missing properties: an empty window, no pause)."""
        return cls(
            sent=tuple(decode_times(_as_bytes(entity.get("Sent")))),
            submitted=tuple(decode_times(_as_bytes(entity.get("Submitted")))),
            paused_until=float(entity.get("PausedUntil") or 0.0),
            etag=etag,
        )

    def to_entity(self, row_key: str, limit: RateLimit) -> dict[str, Any]:
        """The entity that stores this budget (`limit` is written for people reading it)."""
        return {
            "PartitionKey": PARTITION,
            "RowKey": row_key,
            "Sent": encode_times(self.sent),
            "Submitted": encode_times(self.submitted),
            "PausedUntil": float(self.paused_until),
            "Limit": str(limit),
        }

    def delay(self, purpose: CallPurpose, now: float, limit: RateLimit, margin: float) -> float:
        """Seconds until `purpose` may send (0.0: now), the pause included."""
        if now < self.paused_until:
            return self.paused_until - now
        return window_delay(
            limit,
            purpose,
            SlidingWindow(self.sent),
            SlidingWindow(self.submitted),
            now,
            margin=margin,
        )

    def with_call(
        self, purpose: CallPurpose, now: float, limit: RateLimit, margin: float
    ) -> QuotaBudget:
        """This budget plus a call at `now`, calls that have left the window dropped."""
        horizon = now - limit.per_seconds - margin
        submitted = tuple(t for t in self.submitted if t > horizon)
        if purpose is CallPurpose.SUBMISSION:
            submitted += (now,)
        return replace(
            self, sent=(*(t for t in self.sent if t > horizon), now), submitted=submitted
        )


def _as_bytes(value: Any) -> bytes | None:
    # The SDK returns Edm.Binary as bytes; tolerate a str from older writers or tools.
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value)
    return bytes(value)


class _StorageUnavailableError(Exception):
    """The budget's table could not be read or written (anything but a lost race)."""


class _LostRaceError(Exception):
    """The entity changed since it was read (ETag mismatch, or created meanwhile)."""


class TableRateLimiter:
    """A `shared.rate_limit.Limiter` whose window lives in a Table storage entity.

    Thread-safe (one storage round trip at a time per object; `limiter_for` shares one
    per process). `clock` must be a wall clock shared by every instance (default
    ``time.time``); `sleep` is injectable like `RateLimiter`'s. `storage_calls` and
    `grants` count table requests and slots given, `last_grant` is the time stamped on the
    latest slot (what the shared window holds), for tests and the benchmark.
    """

    def __init__(
        self,
        table: TableClient,
        endpoint: str,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = _CLOCK_MARGIN_S,
        fallback_seconds: float = _FALLBACK_S,
    ) -> None:
        self.limit = limit
        self._table = table
        self._row = quota_row_key(endpoint)
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._fallback_seconds = fallback_seconds
        self._fallback = RateLimiter(limit, clock=clock, sleep=sleep)
        self._fallback_until = 0.0
        self._cached: QuotaBudget | None = None
        self._trust_cache = True
        self._lock = threading.Lock()
        self.storage_calls = 0
        self.grants = 0
        self.last_grant: float | None = None  # the time stamped on the latest slot taken

    def __str__(self) -> str:
        return f"{self.limit} (shared by every instance)"

    @property
    def using_fallback(self) -> bool:
        """True while storage is out of reach and the in-process limiter stands in."""
        return self._clock() < self._fallback_until

    # -- the Limiter protocol -------------------------------------------------------------

    def try_acquire(self, purpose: CallPurpose) -> float:
        """Take a slot and return 0.0, or take nothing and return the seconds to wait."""
        with self._lock:
            now = self._clock()
            if now < self._fallback_until:
                return self._fallback.try_acquire(purpose)
            try:
                delay = self._take(purpose, now)
            except _StorageUnavailableError as exc:
                self._fall_back(now, exc)
                return self._fallback.try_acquire(purpose)
            if delay == 0.0:
                self.grants += 1
                self.last_grant = now
                # Mirrored so that a fallback starts from this instance's recent calls; it
                # always has room (its calls are a subset of the shared window's).
                self._fallback.try_acquire(purpose)
            return delay

    def acquire(self, purpose: CallPurpose, *, max_wait: float) -> bool:
        """Wait (at most `max_wait` s) for a slot; False when none came in time."""
        return acquire_within(self.try_acquire, purpose, max_wait, self._clock, self._sleep)

    def pause(self, seconds: float) -> None:
        """A 429: nobody, in any instance, sends for `seconds` (never shortens a pause)."""
        with self._lock:
            now = self._clock()
            until = now + max(seconds, 0.0)
            self._fallback.pause(seconds)
            if now < self._fallback_until:
                return
            try:
                self._raise_pause(until)
            except _StorageUnavailableError as exc:
                self._fall_back(now, exc)

    def wait_estimate(self, purpose: CallPurpose) -> float:
        """Seconds until a call of `purpose` could go (0.0: now); takes nothing."""
        with self._lock:
            now = self._clock()
            if now < self._fallback_until:
                return self._fallback.wait_estimate(purpose)
            try:
                budget = self._cached or self._read()
            except _StorageUnavailableError as exc:
                self._fall_back(now, exc)
                return self._fallback.wait_estimate(purpose)
            return budget.delay(purpose, now, self.limit, self._margin)

    # -- storage --------------------------------------------------------------------------

    def _take(self, purpose: CallPurpose, now: float) -> float:
        """One slot from the shared window (the lock held): 0.0, or the seconds to wait."""
        for _ in range(_MAX_RACES):
            budget = self._current()
            delay = budget.delay(purpose, now, self.limit, self._margin)
            if delay > 0.0:
                # Safe from a stale copy: the truth has at least these calls and pause.
                return delay
            try:
                self._cached = self._write(budget.with_call(purpose, now, self.limit, self._margin))
                return 0.0
            except _LostRaceError:
                # Somebody else wrote: read theirs, decide again, and read before writing
                # until our copy proves current again.
                self._trust_cache = False
            now = self._clock()
        return _RACE_BACKOFF_S

    def _current(self) -> QuotaBudget:
        """The budget to decide on: the cached copy while nobody else seems to be writing
        (a write from it then costs one storage call and a wait none), else a fresh read
        (while instances contend, a write from a stale copy would only lose the race)."""
        cached = self._cached
        if cached is not None and self._trust_cache:
            return cached
        fresh = self._read()
        # Unchanged since our own last copy: the others are quiet, trust the cache again
        # (with no copy yet, start trusting: one instance alone never has to read first).
        self._trust_cache = cached is None or fresh.etag == cached.etag
        self._cached = fresh
        return fresh

    def _raise_pause(self, until: float) -> None:
        for _ in range(_MAX_RACES):
            budget = self._current()
            if budget.paused_until >= until:
                return
            try:
                self._cached = self._write(replace(budget, paused_until=until))
                return
            except _LostRaceError:
                self._trust_cache = False
        log.warning("could not record a Speech pause in the shared budget: too many races")

    def _read(self) -> QuotaBudget:
        self.storage_calls += 1
        try:
            entity = self._table.get_entity(PARTITION, self._row, **_STORAGE_OPTIONS)
        except ResourceNotFoundError:
            return QuotaBudget()  # no call yet (a missing table is created on first write)
        except AzureError as exc:
            raise _StorageUnavailableError(f"read the shared Speech budget: {exc}") from exc
        etag = _etag(entity.metadata)
        try:
            return QuotaBudget.from_entity(entity, etag)
        except (ValueError, TypeError) as exc:
            # Not a row this module wrote (edited by hand?): start a fresh window over it
            # rather than stop every Speech call; the next write replaces it (same ETag).
            log.warning("the shared Speech budget row is unreadable (%s); starting afresh", exc)
            return QuotaBudget(etag=etag)

    def _write(self, budget: QuotaBudget) -> QuotaBudget:
        """Store `budget` if the entity is still the version it was read as; the budget as
        stored (its new ETag). `_LostRaceError` when it is not."""
        entity = budget.to_entity(self._row, self.limit)
        try:
            if budget.etag is None:
                meta = self._create(entity)
            else:
                self.storage_calls += 1
                meta = self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=budget.etag,
                    match_condition=MatchConditions.IfNotModified,
                    **_STORAGE_OPTIONS,
                )
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise _LostRaceError from exc
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise _LostRaceError from exc
            raise _StorageUnavailableError(f"write the shared Speech budget: {exc}") from exc
        except AzureError as exc:
            raise _StorageUnavailableError(f"write the shared Speech budget: {exc}") from exc
        return replace(budget, etag=_etag(meta))

    def _create(self, entity: dict[str, Any]) -> Mapping[str, Any]:
        self.storage_calls += 1
        try:
            return self._table.create_entity(entity, **_STORAGE_OPTIONS)
        except ResourceNotFoundError:
            # The table is created lazily, on the first call of the first instance.
            self.storage_calls += 2
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table(**_STORAGE_OPTIONS)
            return self._table.create_entity(entity, **_STORAGE_OPTIONS)

    def _fall_back(self, now: float, exc: Exception) -> None:
        self._fallback_until = now + self._fallback_seconds
        self._cached = None
        log.warning(
            "shared Speech budget unavailable (%s); limiting this instance alone to %s for "
            "%.0f s, then trying storage again",
            exc,
            self.limit,
            self._fallback_seconds,
        )


def _etag(meta: Mapping[str, Any] | None) -> str | None:
    etag = (meta or {}).get("etag")
    return str(etag) if etag is not None else None


_registry: dict[tuple[str, str, str, RateLimit], TableRateLimiter] = {}
_registry_lock = threading.Lock()


def quota_limiter(table: TableClient, endpoint: str, limit: RateLimit) -> TableRateLimiter:
    """The process-wide shared limiter of `endpoint` at `limit` in `table` (one per
    process, so its threads share one cached copy and one storage round trip at a time)."""
    key = (table.url, table.table_name, endpoint, limit)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = TableRateLimiter(table, endpoint, limit)
        return limiter
