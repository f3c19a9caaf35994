"""Completing a finished batch: each recording's outputs, one recording at a time.

Triggered by ``{"batch_key": ...}`` on the completion queue. The job's files are listed
page by page; each result is matched to its recording by the result's ``source`` URL
(`shared.batch_results`, never by position), its outputs written and that recording marked
done, before the next (a few side by side). A run killed halfway leaves the rest for the
redelivery, which skips the recordings already done. Each recording is settled on its own:

* a result: outputs written, ``done`` (or, when the recording was overwritten meanwhile,
  the superseded outcome, as for a single job);
* failed in the report: retried on its own (deferred; the poller submits it singly) when
  the error may pass and attempts are left, else failed or rejected with its error report;
* neither (a file the service did not account for): retried on its own likewise.

Only when every member is safe is the service job deleted, THEN the batch marked done.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from shared import batches, jobs
from shared.batch_poll import mark_batch_finished
from shared.batch_results import FileOutcome, report_outcomes, result_source, source_key
from shared.batcher import members_of
from shared.batches import BatchRecord, BatchState, describe_batch
from shared.complete import write_outputs
from shared.errors import (
    JobConflictError,
    ResultsNotReadableError,
    SpeechNotFoundError,
    SpeechTransientError,
)
from shared.input_versions import InputStatus, input_status
from shared.jobs import JobRecord, JobState
from shared.outcomes import VANISHED_CODE, drop_superseded, fail_job, reject_job
from shared.runtime import Runtime
from shared.service_failures import INPUT_ACCESS_CODES, is_transient_failure
from shared.speech_models import TranscriptionFile
from shared.submit import defer_delay

log = logging.getLogger(__name__)

__all__ = ["complete_batch", "handle_batch_completion"]

_MEMBER_WORKERS: Final = 16  # recordings settled side by side (each writes its products x8)
_RETRY_S: Final = 30.0
NO_RESULT_CODE: Final = "NoResult"


def handle_batch_completion(rt: Runtime, key: str) -> BatchRecord | None:
    """The queue trigger's work for a batch; returns the batch as this run leaves it."""
    batch = rt.batches.get(key)
    if batch is None:
        log.error("batch=%s: completion for an unknown batch; dropped", key)
        return None
    return complete_batch(rt, batch)


def complete_batch(rt: Runtime, batch: BatchRecord) -> BatchRecord:
    """Settle every member of a finished batch, then delete its job; harmless to repeat."""
    if batch.state is BatchState.SUBMITTED:
        # A web hook may announce the end before the poller sees it.
        try:
            transcription, _ = rt.speech.get(batch.transcription_id)
        except SpeechNotFoundError:
            return batch  # vanished: the poller sees the 404 and queues the members again
        if not transcription.status.is_terminal:
            return batch
        try:
            batch = mark_batch_finished(rt, batch, transcription)
        except JobConflictError:
            return rt.batches.get(batch.key) or batch
    if batch.state is not BatchState.COMPLETING:
        log.info("%s: %s; nothing to complete", describe_batch(batch), batch.state)
        return batch
    try:
        pending = [m for m in members_of(rt, batch.members) if _in(batch, m)]
        saved_done = _settle(rt, batch, pending) if pending else set()
        # Members this run saw saved as done are settled; the others (retried, reported,
        # superseded, or skipped by a helper that lost a race) are read again to be sure.
        unsure = [m.key for m in pending if m.key not in saved_done]
        left = [m.key for m in members_of(rt, unsure) if _in(batch, m)]
        if left:
            # A member whose write lost a race: the redelivery settles it.
            raise JobConflictError(f"{describe_batch(batch)}: {len(left)} member(s) unsettled")
        rt.speech.delete(batch.transcription_id)
    except SpeechTransientError as exc:
        now = rt.clock()
        until = now + defer_delay(exc.retry_after, minimum=15.0)
        log.warning(
            "%s: completion postponed (%s); retried at %s",
            describe_batch(batch),
            exc,
            until.isoformat(timespec="seconds"),
        )
        return rt.batches.save(batch, batches.renew(batch, now=now, until=until))
    done = rt.batches.save(batch, batches.close(batch, now=rt.clock()))
    log.info("%s: every recording settled; service job deleted", describe_batch(done))
    return done


def _in(batch: BatchRecord, record: JobRecord) -> bool:
    return record.state is JobState.BATCHED and record.batch_key == batch.key


def _settle(rt: Runtime, batch: BatchRecord, pending: list[JobRecord]) -> set[str]:
    """Settle each pending member; returns the keys this run saved as done."""
    by_source = {
        source_key(rt.storage.blob_client(m.container, m.blob_name).url): m for m in pending
    }
    settled: set[str] = set()
    done: set[str] = set()
    lock = threading.Lock()
    # Results only (every page): the report is listed only when a member has no result, so
    # a batch of 100 costs one page of 100 instead of two for its 101 files.
    results = _files(rt, batch, "Transcription")

    def one(content_url: str) -> None:
        try:
            raw = rt.results.read(content_url)
        except SpeechNotFoundError:
            return  # gone: its recording is retried on its own below
        try:
            result: Any = json.loads(raw)
            source = source_key(result_source(result))
        except ValueError as exc:
            log.warning("%s: a result file is unreadable (%s)", describe_batch(batch), exc)
            return
        member = by_source.get(source)
        if member is None:
            log.warning(
                "%s: a result for a recording not in the batch; ignored", describe_batch(batch)
            )
            return
        saved_done = _write_member(rt, batch, member, raw, result)
        with lock:
            settled.add(member.key)
            if saved_done:
                done.add(member.key)

    with ThreadPoolExecutor(max_workers=_MEMBER_WORKERS, thread_name_prefix="batch-out") as pool:
        list(pool.map(one, [f.content_url for f in results]))
    unsettled = {s: m for s, m in by_source.items() if m.key not in settled}
    outcomes = _report(rt, batch) if unsettled else {}
    for source, member in unsettled.items():
        outcome = outcomes.get(source)
        if outcome is not None and outcome.succeeded:
            outcome = FileOutcome(False, NO_RESULT_CODE, "reported transcribed, no result file")
        if outcome is None:
            if batch.service_status == "Failed":
                outcome = FileOutcome(False, batch.error_code or "Unknown", batch.error_message)
            else:
                outcome = FileOutcome(False, NO_RESULT_CODE, "the job produced no result for it")
        _member_failed(rt, member, outcome)
    return done


def _files(rt: Runtime, batch: BatchRecord, kind: str) -> list[TranscriptionFile]:
    try:
        return [
            f for f in rt.speech.list_files(batch.transcription_id, kind=kind) if f.kind == kind
        ]
    except SpeechNotFoundError:
        return []


def _report(rt: Runtime, batch: BatchRecord) -> dict[str, FileOutcome]:
    """`source_key` -> outcome from the job's ``TranscriptionReport`` (empty when unreadable)."""
    outcomes: dict[str, FileOutcome] = {}
    for report in _files(rt, batch, "TranscriptionReport"):
        try:
            outcomes.update(report_outcomes(json.loads(rt.results.read(report.content_url))))
        except (ValueError, SpeechNotFoundError, ResultsNotReadableError) as exc:
            log.warning("%s: report unreadable (%s)", describe_batch(batch), exc)
    return outcomes


def _write_member(
    rt: Runtime, batch: BatchRecord, member: JobRecord, raw: bytes, result: Any
) -> bool:
    """Write the member's outputs and mark it done; False when it ended another way."""
    if input_status(rt, member) is InputStatus.CHANGED:
        log.info(
            "%s: overwritten while its batch ran; the newer version's job writes the outputs",
            jobs.describe(member),
        )
        drop_superseded(
            rt,
            member,
            reason="the recording was overwritten by a newer upload before this version finished",
        )
        return False
    now = rt.clock()
    try:
        write_outputs(rt, _with_finish(member, batch), raw, result)
    except ValueError as exc:
        fail_job(
            rt,
            member,
            reason_code="InvalidResult",
            message=f"the Speech service's result file could not be read: {exc}",
        )
        return False
    rt.store.save(member, jobs.complete(member, now=now))
    return True


def _with_finish(member: JobRecord, batch: BatchRecord) -> JobRecord:
    return dataclasses.replace(member, finished_at=batch.finished_at)


def _member_failed(rt: Runtime, member: JobRecord, outcome: FileOutcome) -> None:
    """One recording of the batch failed: retry it on its own, or report it."""
    code = outcome.error_kind or "Unknown"  # the service's errorKind for this file
    message = outcome.error_message
    retry = is_transient_failure(code) or code in (NO_RESULT_CODE, VANISHED_CODE)
    if code in INPUT_ACCESS_CODES:
        status = input_status(rt, member)
        if status is InputStatus.GONE:
            reject_job(
                rt,
                member,
                reason_code="InputDeleted",
                message="the recording was deleted before it could be transcribed",
            )
            return
        if status is InputStatus.CHANGED:
            drop_superseded(rt, member, reason="the recording was overwritten meanwhile")
            return
        retry = True  # unchanged: a storage outage or an expired SAS; another try may work
    if retry and member.attempts < rt.settings.max_job_attempts:
        now = rt.clock()
        until = now + defer_delay(None, minimum=_RETRY_S)
        log.warning(
            "%s: its file failed in the batch (%s); retried on its own (attempt %d of %d)",
            jobs.describe(member),
            code,
            member.attempts + 1,
            rt.settings.max_job_attempts,
        )
        rt.store.save(
            member,
            jobs.defer(member, now=now, until=until, reason_code=code, reason=message or code),
        )
        return
    if retry:
        message = f"{message} (gave up after {member.attempts} attempts)"
    fail_job(
        rt,
        member,
        reason_code=code,
        message=message or "the Speech service could not transcribe the recording",
        service_error_code=code,
    )
