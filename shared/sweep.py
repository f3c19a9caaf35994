"""The sweep: no recording left behind, whatever the triggers missed.

A timer (``SWEEP_SCHEDULE``, default hourly) runs `run_sweep`:

1. re-drives poison messages (`shared.redrive`): completions from
   ``<COMPLETION_QUEUE>-poison`` and blob-trigger poison messages for the input container,
   each up to POISON_REDRIVE_LIMIT times, then reports the job as failed;
2. pages through the input container (5,000 names per listing page) and looks up each blob
   version's job key in the job table with point reads, 16 at a time: 100k blobs cost 20
   listings and 100k point reads (the cheapest Table operation; an OR of row keys would
   scan the whole partition). Blobs younger than `SweepLimits.grace` are skipped (their trigger is
   probably still on its way). A blob version without a job record is submitted through
   the blob trigger's own entry point (`shared.submit.handle_new_blob`), up to
   `max_submitted` per run and only while Speech is not throttling; the rest get a
   `deferred` record due at once, which the poller submits at the pace Speech allows.

Work per run is bounded (`SweepLimits`): a run that reaches its time or blob budget saves the
listing position in the job table (PartitionKey ``sweep``) and the next run continues there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import ResourceNotFoundError

from shared import jobs
from shared.errors import SpeechServiceError, StorageTransientError
from shared.input_versions import header_etag
from shared.job_store import PARTITION
from shared.jobs import JobState
from shared.redrive import (
    VISIBILITY_S,
    RedriveReport,
    redrive_blob_trigger_poison,
    redrive_completion_poison,
)
from shared.storage import storage_errors
from shared.submit import MISSED_TRIGGER_CODE, THROTTLED_CODE, handle_new_blob

if TYPE_CHECKING:
    from azure.data.tables import TableClient
    from azure.storage.blob import BlobProperties

    from shared.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = [
    "CURSOR_PARTITION",
    "MISSED_TRIGGER_CODE",
    "SweepLimits",
    "SweepReport",
    "find_missing",
    "run_sweep",
]

CURSOR_PARTITION: Final = "sweep"
_CURSOR_ROW: Final = "cursor"


@dataclass(frozen=True)
class SweepLimits:
    """How much one run may do. The defaults fit a 5-minute functionTimeout."""

    grace: timedelta = timedelta(minutes=10)
    max_examined: int = 200_000
    max_submitted: int = 100
    time_budget: timedelta = timedelta(minutes=4)
    lookup_concurrency: int = 16
    max_poison_messages: int = 500
    # A poison message being handled stays hidden this long (a crash makes it reappear).
    poison_visibility_s: int = VISIBILITY_S
    list_page: int = 5000


@dataclass
class SweepReport:
    """What one sweep did (logged; handy in tests)."""

    examined: int = 0
    too_new: int = 0
    missing: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    handed_to_poller: list[str] = field(default_factory=list)
    finished_listing: bool = False
    errors: int = 0
    redrive: RedriveReport = field(default_factory=RedriveReport)


def find_missing(table: TableClient, keys: Sequence[str], *, concurrency: int = 16) -> set[str]:
    """The subset of job `keys` that has no row in `table`: one point read each, in parallel.

    Point reads, not ``RowKey eq 'a' or RowKey eq 'b'`` filters: the Table service serves an
    OR of row keys with a scan of the whole partition, and every job is in one partition.
    """

    def exists(key: str) -> bool:
        try:
            with storage_errors("look up job"):
                table.get_entity(PARTITION, key, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    unique = sorted(set(keys))
    if not unique:
        return set()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(unique)))) as pool:
        found = pool.map(exists, unique)
        return {key for key, present in zip(unique, found, strict=True) if not present}


def run_sweep(rt: Runtime, limits: SweepLimits | None = None) -> SweepReport:
    """One sweep run: re-drive poison messages, then submit blobs that have no job."""
    # Blobs younger than SWEEP_MIN_AGE_SECONDS are left to the blob trigger, which may
    # simply not have seen them yet.
    limits = limits or SweepLimits(grace=timedelta(seconds=rt.settings.sweep_min_age_seconds))
    rt.ensure_resources()
    report = SweepReport()
    started = time.monotonic()
    for redrive in (redrive_completion_poison, redrive_blob_trigger_poison):
        redrive(
            rt,
            report.redrive,
            max_messages=limits.max_poison_messages,
            visibility_s=limits.poison_visibility_s,
        )
    _sweep_inputs(rt, limits, report, deadline=started + limits.time_budget.total_seconds())
    r = report.redrive
    log.info(
        "sweep: %d blobs examined (%d too new), %d without a job: %d submitted, %d handed to "
        "the poller; poison: %d completions re-driven, %d given up, %d blobs re-driven, "
        "%d given up; %s; %d errors",
        report.examined,
        report.too_new,
        len(report.missing),
        len(report.submitted),
        len(report.handed_to_poller),
        len(r.completions_redriven),
        len(r.completions_given_up),
        len(r.blobs_redriven),
        len(r.blobs_given_up),
        "listing finished" if report.finished_listing else "listing continues next run",
        report.errors + r.errors,
    )
    return report


def _sweep_inputs(rt: Runtime, limits: SweepLimits, report: SweepReport, deadline: float) -> None:
    table = rt.storage.table_client(rt.settings.jobs_table)
    container = rt.storage.blob.get_container_client(rt.settings.input_container)
    cursor = _read_cursor(table)
    # by_page() returns an ItemPaged page iterator; its continuation_token is the resume point.
    pages: Any = container.list_blobs(results_per_page=limits.list_page).by_page(
        continuation_token=cursor
    )
    throttled = False
    try:
        with storage_errors("list input blobs"):
            for page in pages:
                blobs = list(page)
                throttled = _handle_page(
                    rt, limits=limits, report=report, table=table, blobs=blobs, throttled=throttled
                )
                out_of_budget = (
                    time.monotonic() >= deadline or report.examined >= limits.max_examined
                )
                if out_of_budget and pages.continuation_token:
                    _write_cursor(table, pages.continuation_token)
                    return
    except ResourceNotFoundError:
        log.info("sweep: input container %s does not exist yet", rt.settings.input_container)
    report.finished_listing = True
    if cursor:
        _write_cursor(table, None)


def _handle_page(
    rt: Runtime,
    *,
    limits: SweepLimits,
    report: SweepReport,
    table: TableClient,
    blobs: list[BlobProperties],
    throttled: bool,
) -> bool:
    now = rt.clock()
    container = rt.settings.input_container
    candidates: dict[str, BlobProperties] = {}
    for blob in blobs:
        report.examined += 1
        if blob.last_modified is not None and blob.last_modified > now - limits.grace:
            report.too_new += 1
            continue
        candidates[jobs.job_key(container, blob.name, header_etag(str(blob.etag)))] = blob
    missing = find_missing(table, list(candidates), concurrency=limits.lookup_concurrency)
    for key in sorted(missing, key=lambda k: candidates[k].name):
        blob = candidates[key]
        report.missing.append(blob.name)
        if not throttled and len(report.submitted) < limits.max_submitted:
            throttled = _submit(rt, report, blob)
        else:
            _hand_to_poller(rt, report, blob, now)
    return throttled


def _submit(rt: Runtime, report: SweepReport, blob: BlobProperties) -> bool:
    """Submit one missed blob like its trigger would; True when Speech is throttling."""
    client = rt.storage.blob_client(rt.settings.input_container, blob.name)
    try:
        result = handle_new_blob(rt, client)
    except (SpeechServiceError, StorageTransientError) as exc:
        report.errors += 1
        log.warning(
            "blob=%s/%s: the sweep could not submit it (next run retries): %s",
            rt.settings.input_container,
            blob.name,
            exc,
        )
        return False
    report.submitted.append(blob.name)
    log.warning(
        "blob=%s/%s: had no job (missed trigger); submitted by the sweep",
        rt.settings.input_container,
        blob.name,
    )
    return (
        result is not None
        and result.state is JobState.DEFERRED
        and result.error_code == THROTTLED_CODE
    )


def _hand_to_poller(rt: Runtime, report: SweepReport, blob: BlobProperties, now: datetime) -> None:
    """Record the blob as a deferred job due now: the poller submits it when Speech allows."""
    record = jobs.new_job(
        container=rt.settings.input_container,
        name=blob.name,
        etag=header_etag(str(blob.etag)),
        size=int(blob.size or 0),
        now=now,
        timeout=timedelta(hours=rt.settings.job_timeout_hours),
        lease=timedelta(0),
    )
    deferred = jobs.defer(
        record,
        now=now,
        until=now,
        reason_code=MISSED_TRIGGER_CODE,
        reason="found by the sweep without a job; waiting for the poller to submit it",
    )
    try:
        created = rt.store.create(deferred)
    except StorageTransientError as exc:
        report.errors += 1
        log.warning("%s: could not record it (next run retries): %s", jobs.describe(record), exc)
        return
    if created is not None:
        report.handed_to_poller.append(blob.name)


def _read_cursor(table: TableClient) -> str | None:
    try:
        with storage_errors("read sweep cursor"):
            entity: Any = table.get_entity(CURSOR_PARTITION, _CURSOR_ROW)
    except ResourceNotFoundError:
        return None
    marker = entity.get("Marker")
    return str(marker) if marker else None


def _write_cursor(table: TableClient, marker: str | None) -> None:
    with storage_errors("save sweep cursor"):
        table.upsert_entity(
            {"PartitionKey": CURSOR_PARTITION, "RowKey": _CURSOR_ROW, "Marker": marker or ""}
        )
