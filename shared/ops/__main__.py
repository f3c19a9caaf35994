"""``python -m shared.ops``: the operator view from a terminal, with the app's settings.

    python -m shared.ops jobs [--state failed] [--prefix calls/] [--since 24h] [--limit 50]
    python -m shared.ops show <key>
    python -m shared.ops retry <key>
    python -m shared.ops stats [--hours 24]
    python -m shared.ops reindex

Same answers as the HTTP API (the same query layer); ``--json`` prints them as the API
does. Settings come from the environment, then ``./local.settings.json`` (as `func start`
and the doctor read them). Exit status: 0, 1 when the request was refused (unknown job, a
retry the state refuses, a bad filter), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import OperatorRequestError
from shared.ops import query
from shared.ops.index import index_entity, list_item
from shared.ops.reindex import reindex
from shared.ops.retry import retry_job
from shared.runtime import Runtime, runtime_for
from shared.settings import get_settings


def _load_local_settings(path: Path) -> None:
    """Values of local.settings.json the environment does not set (like `func start`)."""
    if not path.is_file():
        return
    values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.add_argument("--settings-file", default="local.settings.json", type=Path)
    sub = parser.add_subparsers(dest="command", required=True)
    jobs = sub.add_parser("jobs", help="jobs, newest first")
    jobs.add_argument("--state")
    jobs.add_argument("--prefix", help="recording names starting with this")
    jobs.add_argument("--since", help="ISO time or 90m / 24h / 7d")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--continuation")
    show = sub.add_parser("show", help="one job in full")
    show.add_argument("key")
    retry = sub.add_parser("retry", help="a new attempt for a failed job")
    retry.add_argument("key")
    stats = sub.add_parser("stats", help="counts, throughput, turnaround, failure reasons")
    stats.add_argument("--hours", type=int, default=24)
    sub.add_parser("reindex", help="rebuild the job index and hourly counters from the jobs")
    return parser


def _print_jobs(page: query.JobPage) -> None:
    for job in page.items:
        reason = f"  {job['reasonCode']}" if job["reasonCode"] else ""
        print(f"{job['created']}  {job['state']:<10} {job['key']}  {job['recording']}{reason}")
    if page.continuation:
        print(f"more: --continuation {page.continuation}")


def _print_stats(stats: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in stats["counts"].items())
    print(f"last {stats['hours']} h (since {stats['from']}): {counts}")
    print(
        f"turnaround p50 {stats['turnaroundP50Seconds']} s, p95 {stats['turnaroundP95Seconds']} s;"
        f" audio {stats['audioHoursTranscribed']} h; Speech requests per recording "
        f"{stats['speechRequestsPerRecording']}"
    )
    for reason in stats["topFailureReasons"]:
        print(f"  {reason['count']:>6}  {reason['reasonCode']}: {reason['advice']}")


def run(rt: Runtime, args: argparse.Namespace) -> Any:
    """Run one command; returns what to print as JSON."""
    if args.command == "jobs":
        page = query.list_jobs(
            rt,
            state=args.state,
            prefix=args.prefix,
            since=query.parse_since(args.since, rt.clock()),
            limit=args.limit,
            continuation=args.continuation,
        )
        if not args.json:
            _print_jobs(page)
        return page.to_json()
    if args.command == "show":
        return query.job_detail(rt, args.key)
    if args.command == "retry":
        result = retry_job(rt, args.key)
        answer = {"retried": result.retried, "job": list_item(index_entity(result.record))}
        if not args.json:
            print("a new attempt is queued" if result.retried else "already retried")
        return answer
    if args.command == "stats":
        stats = query.stats(rt, args.hours)
        if not args.json:
            _print_stats(stats)
        return stats
    summary = reindex(rt)
    if not args.json:
        print(f"reindexed {summary.jobs} jobs into {summary.hours} hourly counter rows")
    return summary.to_json()


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    _load_local_settings(args.settings_file)
    rt = runtime_for(get_settings())
    try:
        rt.ensure_resources()
        answer = run(rt, args)
    except OperatorRequestError as exc:
        print(f"{exc.message} {exc.what_to_do}", file=sys.stderr)
        return 1
    if args.json or args.command == "show":
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
