"""The operator view's one query layer: the API, the status page and the CLI all call these.

Every answer is plain JSON-ready data, built from the index rows, the hourly counters and
the job rows (`shared.ops.index`, `shared.ops.counters`): a list page is one range read of
the index, stats are one range read of at most SHARDS x hours counter rows plus the active
jobs (the poller's own query), and one job is one point read. Nothing returned carries a
key, token or SAS: transcription URLs are stored without a query and are not returned.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.data.tables import TableClient

from shared.error_reports import advice_for
from shared.errors import OperatorRequestError
from shared.jobs import JobRecord, JobState
from shared.ops import counters, index
from shared.outcomes import SUPERSEDED_CODE
from shared.output_names import error_report_name, output_prefix
from shared.runtime import Runtime
from shared.storage import storage_errors

__all__ = [
    "MAX_HOURS",
    "MAX_LIMIT",
    "JobPage",
    "job_detail",
    "list_jobs",
    "parse_since",
    "stats",
]

MAX_LIMIT: Final = 200
MAX_HOURS: Final = 24 * 14
# Service pages read for one list page at most: a rare state in a long range answers with a
# shorter page and a continuation token instead of reading the whole index at once.
_MAX_READS: Final = 10
_STATES: Final = tuple(s.value for s in JobState)


@dataclass(frozen=True)
class JobPage:
    """One page of a job list, newest first; `continuation` fetches the next (None: the end)."""

    items: list[dict[str, Any]]
    continuation: str | None

    def to_json(self) -> dict[str, Any]:
        """The API's answer."""
        return {"jobs": self.items, "continuation": self.continuation}


def _table(rt: Runtime) -> TableClient:
    return rt.storage.table_client(rt.settings.jobs_table)


def _bad(code: str, message: str, what_to_do: str) -> OperatorRequestError:
    return OperatorRequestError(400, code, message, what_to_do)


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """``since``: an ISO 8601 time (UTC when no offset) or a duration back from now
    (``90m``, ``24h``, ``7d``)."""
    if not text:
        return None
    text = text.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:].lower() in units and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1].lower()])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(
            "BadSince",
            f"since={text!r} is neither a time nor a duration.",
            "Give an ISO 8601 time (2026-12-05T08:00:00Z) or a duration back from now "
            "(90m, 24h, 7d).",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _encode_token(token: Any) -> str | None:
    if not token:
        return None
    raw = json.dumps([token["PartitionKey"], token["RowKey"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(text: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        loaded = json.loads(raw)
        if not isinstance(loaded, list):
            raise TypeError(loaded)
        partition, row = loaded
        # Opaque to us (Azurite encodes them): only their shape is checked.
        if not isinstance(partition, str) or not isinstance(row, str):
            raise ValueError(partition)
    except (ValueError, TypeError, binascii.Error):
        raise _bad(
            "BadContinuation",
            "the continuation token is not one this API returned.",
            "Pass the `continuation` value of the previous page unchanged, or leave it out "
            "to start from the newest job.",
        ) from None
    return {"PartitionKey": partition, "RowKey": row}


def list_jobs(
    rt: Runtime,
    *,
    state: str | None = None,
    prefix: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    continuation: str | None = None,
) -> JobPage:
    """Jobs newest first, filtered by state, recording-name prefix and creation time."""
    if state and state not in _STATES:
        raise _bad(
            "BadState",
            f"state={state!r} is not a job state.",
            f"Use one of: {', '.join(_STATES)}.",
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("BadLimit", f"limit={limit} is out of range.", f"Use 1 to {MAX_LIMIT}.")
    query = index.list_filter(state=state, prefix=prefix, since=since)
    token: Any = _decode_token(continuation) if continuation else None
    items: list[dict[str, Any]] = []
    table = _table(rt)
    for _ in range(_MAX_READS):
        with storage_errors("list jobs"):
            pages: Any = table.query_entities(query, results_per_page=limit - len(items)).by_page(
                continuation_token=token
            )
            page = list(next(pages, []))
        items.extend(_with_outputs(rt, index.list_item(e)) for e in page)
        token = pages.continuation_token
        if not token or len(items) >= limit:
            break
    return JobPage(items=items, continuation=_encode_token(token))


def _with_outputs(rt: Runtime, item: dict[str, Any]) -> dict[str, Any]:
    """Where a job's outputs (done) or its error report (failed/rejected) are."""
    name = str(item.get("recording") or "")
    state = item.get("state")
    if state == JobState.DONE:
        item["outputs"] = {
            "container": rt.settings.output_container,
            "prefix": output_prefix(name) + "/",
        }
    elif state in (JobState.FAILED, JobState.REJECTED) and item["reasonCode"] != SUPERSEDED_CODE:
        item["errorReport"] = {
            "container": rt.settings.error_container,
            "name": error_report_name(name),
        }
    if item.get("reasonCode") and state in (JobState.FAILED, JobState.REJECTED):
        item["advice"] = advice_for(str(item["reasonCode"]))
    return item


def job_detail(rt: Runtime, key: str) -> dict[str, Any]:
    """One job in full: its list item, transitions, and the names of its outputs."""
    with storage_errors("read job"):
        record = rt.store.get(key) if key.startswith("tj-") else None
    if record is None:
        raise OperatorRequestError(
            404,
            "UnknownJob",
            f"there is no job with key {key[:80]!r}.",
            "Job keys start with `tj-`; list jobs (GET /api/jobs, `python -m shared.ops jobs`) "
            "to find one by recording name.",
        )
    item = _with_outputs(rt, index.list_item(index.index_entity(record)))
    item.update(
        {
            "blobETag": record.blob_etag,
            "blobSize": record.blob_size,
            "channels": record.channels,
            "audioFormat": record.audio_format or None,
            "transcriptionId": record.transcription_id or None,
            "serviceStatus": record.service_status or None,
            "deadline": _iso(record.deadline),
            "nextCheckAt": _iso(record.next_check_at),
            "updated": _iso(record.updated),
            "transitions": [
                {"state": t.state, "at": _iso(t.at), "reasonCode": t.code or None}
                for t in record.history
            ],
        }
    )
    if record.state is JobState.DONE:
        item["outputs"]["names"] = _output_names(rt, record)
    return item


def _output_names(rt: Runtime, record: JobRecord) -> list[str]:
    container = rt.storage.blob.get_container_client(rt.settings.output_container)
    with storage_errors("list outputs"):
        prefix = output_prefix(record.blob_name) + "/"
        return sorted(b.name for b in container.list_blobs(name_starts_with=prefix))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stats(rt: Runtime, hours: int = 24) -> dict[str, Any]:
    """The last `hours` whole hours (the current one included): outcomes, throughput,
    turnaround, audio, failure reasons, Speech requests; and what is in flight now."""
    if not 1 <= hours <= MAX_HOURS:
        raise _bad("BadHours", f"hours={hours} is out of range.", f"Use 1 to {MAX_HOURS}.")
    now = rt.clock()
    window = counters.hours_back(now, hours)
    table = _table(rt)
    per_hour = {hour: counters.HourCounts() for hour in window}
    query = counters.hour_range_filter(window[0], window[-1] + timedelta(hours=1))
    with storage_errors("read hourly counters"):
        for entity in table.query_entities(query, results_per_page=1000):
            hour = datetime.strptime(entity["RowKey"][:10], "%Y%m%d%H").replace(tzinfo=UTC)
            if hour in per_hour:
                per_hour[hour].add(counters.HourCounts.from_properties(entity))
    total = counters.HourCounts()
    for counts in per_hour.values():
        total.add(counts)
    with storage_errors("query active jobs"):
        active = rt.store.active()
    in_flight = Counter(r.state.value for r in active)
    ended = total.ended

    def ratio(numerator: float) -> float | None:
        return round(numerator / ended, 2) if ended else None

    return {
        "hours": hours,
        "from": _iso(window[0]),
        "to": _iso(now),
        "counts": {
            "done": total.done,
            "failed": total.failed,
            "rejected": total.rejected,
            **{s.value: in_flight.get(s.value, 0) for s in JobState if not s.is_terminal},
        },
        "inFlight": sum(in_flight.values()),
        "perHour": [
            {
                "hour": _iso(hour),
                "done": c.done,
                "failed": c.failed,
                "rejected": c.rejected,
                "turnaroundP50Seconds": _rounded(counters.percentile(c.turnaround, 0.5)),
                "turnaroundP95Seconds": _rounded(counters.percentile(c.turnaround, 0.95)),
            }
            for hour, c in per_hour.items()
        ],
        "turnaroundP50Seconds": _rounded(counters.percentile(total.turnaround, 0.5)),
        "turnaroundP95Seconds": _rounded(counters.percentile(total.turnaround, 0.95)),
        "audioHoursTranscribed": round(total.audio_seconds / 3600, 4),
        "speechRequests": total.speech_requests,
        "speechRequestsPerRecording": ratio(total.speech_requests),
        "submissionsPerRecording": ratio(total.submissions),
        "topFailureReasons": [
            {"reasonCode": code, "count": n, "advice": advice_for(code)}
            for code, n in total.reasons.most_common(10)
            if n > 0
        ],
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
