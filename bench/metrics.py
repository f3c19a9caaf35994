"""Pure arithmetic of the benchmark: percentiles, overheads, per-file request counts."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

_EXECUTED = re.compile(
    r"Executed 'Functions\.(?P<name>[^']+)' \((?P<outcome>\w+), Id=[^,]+, Duration=(?P<ms>\d+)ms\)"
)


def percentile(values: list[float], share: float) -> float:
    """The `share` (0..1) percentile by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float]:
    """p50, p95 and max, rounded to milliseconds."""
    return {
        "p50": round(percentile(values, 0.50), 3),
        "p95": round(percentile(values, 0.95), 3),
        "max": round(max(values), 3) if values else 0.0,
    }


def parse_time(value: str) -> float:
    """POSIX seconds of an ISO 8601 timestamp such as ``2026-11-21T09:00:00.123Z``."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def overheads(
    finished_by_key: Mapping[str, float], written_by_key: Mapping[str, float]
) -> list[float]:
    """Seconds from the service finishing each job to its channel_0.json being written."""
    return [
        written_by_key[key] - finished
        for key, finished in finished_by_key.items()
        if key in written_by_key
    ]


def member_finished_times(
    stats: Mapping[str, Any], keys: Iterable[str], batch_of: Mapping[str, str]
) -> dict[str, float]:
    """Job key -> when the service finished its recording: its own job's end, or the end of
    the batch (a job whose displayName is the batch key) that held it, whichever is later
    (a recording retried on its own after its file failed in a batch ends with its own)."""
    wanted = list(keys)
    own = finished_times(stats, wanted)
    of_batches = finished_times(stats, set(batch_of.values()))
    out: dict[str, float] = {}
    for key in wanted:
        times = [t for t in (own.get(key), of_batches.get(batch_of.get(key, ""))) if t is not None]
        if times:
            out[key] = max(times)
    return out


def finished_times(stats: Mapping[str, Any], keys: Iterable[str]) -> dict[str, float]:
    """Job key -> when the emulator finished it (the job's displayName is the key).

    A key with several transcriptions (a resubmission) takes the last one that finished.
    """
    wanted = set(keys)
    out: dict[str, float] = {}
    for timeline in stats.get("jobs", {}).values():
        key = timeline.get("displayName")
        finished = timeline.get("finished")
        if key in wanted and finished:
            out[key] = max(out.get(key, 0.0), parse_time(finished))
    return out


def route_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """Speech API requests per route (all statuses), from ``GET /_emulator/stats``."""
    return {route: sum(codes.values()) for route, codes in stats.get("requests", {}).items()}


def status_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """Speech API requests per HTTP status, summed over routes."""
    total: Counter[str] = Counter()
    for codes in stats.get("requests", {}).values():
        total.update(codes)
    return dict(total)


def minus(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per-key difference of two counters, keys with nothing left out."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def per_file(counts: Mapping[str, int], files: int) -> dict[str, float]:
    """Counts divided by the number of files, rounded."""
    return {k: round(v / max(files, 1), 3) for k, v in sorted(counts.items())}


def storage_breakdown(requests: Mapping[str, int], files: int) -> dict[str, Any]:
    """Per-file storage requests from the counter's ``"caller service METHOD resource"`` keys.

    ``app`` is what the functions' code asked for; ``host`` is the trigger machinery
    (container scans, receipts, queue polling), reported apart because its share depends on
    the host (devhost here, the Functions runtime in Azure) and on idle time.
    """
    by_caller: Counter[str] = Counter()
    by_kind: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for key, count in requests.items():
        caller, service, method, resource = [*key.split(" ", 3), "", "", ""][:4]
        by_caller[caller] += count
        by_kind[caller][f"{service} {method} {resource}".strip()] += count
    return {
        "total": round(sum(by_caller.values()) / max(files, 1), 3),
        "app": round(by_caller["app"] / max(files, 1), 3),
        "host": round(by_caller["host"] / max(files, 1), 3),
        "app_by_request": per_file(by_kind["app"], files),
        "host_by_request": per_file(by_kind["host"], files),
    }


def function_runs(log_lines: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per function: executions, failures and duration p50/p95/max (s), from devhost's log."""
    durations: defaultdict[str, list[float]] = defaultdict(list)
    failures: Counter[str] = Counter()
    for line in log_lines:
        m = _EXECUTED.search(line)
        if m:
            durations[m["name"]].append(int(m["ms"]) / 1000)
            if m["outcome"] != "Succeeded":
                failures[m["name"]] += 1
    return {
        name: {"runs": len(values), "failed": failures[name], "duration_s": summary(values)}
        for name, values in sorted(durations.items())
    }
