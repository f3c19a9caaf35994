"""`python -m bench.ops_bench [--jobs 100000] [--days 7]`: the operator view with many jobs.

Starts an Azurite of its own with `--jobs` job records spread over the last `--days` days
(90 % done, 5 % failed, 4 % rejected, 1 % still in flight; turnarounds from seconds to
hours), each with its index row, plus the hourly counter rows they add up to: the table as
the app leaves it after that many jobs. `--fill seed` (the default) writes those rows into
Azurite's database file while it is stopped and starts it on that file (seconds for 100,000
jobs); `--fill requests` sends one upsert per row from 8 threads into an in-memory Azurite,
whose cost per write grows with the table (about an hour for 100,000). Both give the same
answers (tests/bench/test_ops_bench_smoke.py). Then it times what an operator asks, each
`--repeat` times, through the same query layer the API and the CLI use, and prints one JSON
object: per question the median and worst latency in milliseconds and the size of its
answer. It also times the live cost of the bookkeeping: `--writes` state changes through the
job store with and without the recorder (index row + counter row per change).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.data.tables import TableClient

from devhost.services import start_azurite
from shared import jobs
from shared.job_store import JobStore, to_entity
from shared.jobs import JobRecord, JobState
from shared.ops import counters, index, query
from shared.ops.http import get_status_page
from shared.ops.recorder import Recorder
from shared.runtime import Runtime
from shared.settings import Settings
from shared.storage import StorageClients

_REASONS = ("InvalidAudioFormat", "OutOfAttempts", "TimedOut", "EmptyFile", "NotAudio")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.ops_bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--now",
        type=_aware_datetime,
        default=None,
        help="ISO time the jobs are spread back from and the questions are asked at "
        "(default: the current time); two runs with the same --now and --seed hold the same "
        "rows and get the same answers, whatever the hour they run in",
    )
    parser.add_argument(
        "--fill",
        choices=("seed", "requests"),
        default="seed",
        help="seed: write the rows into Azurite's database file while it is stopped, then "
        "start it on that file (minutes for 100,000 jobs); requests: one upsert per row "
        "(Azurite slows down per write as the table grows: about an hour for 100,000)",
    )
    return parser.parse_args(argv)


def _aware_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or +00:00")
    return value.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    """Fill a job table, time the operator's questions, print the result."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ops-bench-") as tmp:
        if args.fill == "seed":
            return _main_seeded(Path(tmp), args)
        azurite = start_azurite(
            Path(tmp) / "data", log_path=Path(tmp) / "azurite.log", in_memory=True
        )
        try:
            print(json.dumps(_run(azurite.connection_string, args)), flush=True)
            return 0
        finally:
            azurite.close()


_TABLE = "opsbench"


def _main_seeded(tmp: Path, args: argparse.Namespace) -> int:
    """Create the table through Azurite, stop it, add every row to its database file (what
    Azurite itself would have saved after the upserts), and start it again on that file.

    The queries then run against a real Azurite over HTTP; only the filling skips the request
    path, whose cost per write grows with the table on Azurite (not on Azure Table storage).
    """
    data = tmp / "data"
    azurite = start_azurite(data, log_path=tmp / "azurite-create.log")
    try:
        _runtime(azurite.connection_string, _TABLE, datetime.now(UTC))
        _wait_for_table_in_db(data / _DB_FILE, _TABLE)
    finally:
        azurite.close()
    now = args.now or datetime.now(UTC)
    records = list(synthetic_jobs(args.jobs, args.days, now, args.seed))
    started = time.monotonic()
    _seed_db(data / _DB_FILE, _TABLE, _rows(records))
    azurite = start_azurite(data, log_path=tmp / "azurite.log", timeout=300.0)
    fill_s = time.monotonic() - started
    try:
        result = _run(azurite.connection_string, args, records=records, now=now, fill_s=fill_s)
        print(json.dumps({**result, "fill": "seed"}), flush=True)
        return 0
    finally:
        azurite.close()


_DB_FILE = "__azurite_db_table__.json"
_ACCOUNT = "devstoreaccount1"


def _wait_for_table_in_db(path: Path, table: str, timeout: float = 30.0) -> None:
    """Azurite saves its table database every few seconds: wait until the new table is in."""
    deadline = time.monotonic() + timeout
    name = f"{_ACCOUNT}${table}"
    while time.monotonic() < deadline:
        try:
            names = {c["name"] for c in json.loads(path.read_text())["collections"]}
        except (OSError, ValueError, KeyError):
            names = set()
        if name in names:
            return
        time.sleep(0.5)
    raise TimeoutError(f"Azurite did not save table {table} to {path} within {timeout} s")


def _rows(records: list[JobRecord]) -> list[dict[str, Any]]:
    """Every row the app would have written for `records`: job, index and counter rows."""
    rows: list[dict[str, Any]] = []
    for record in records:
        rows.append(to_entity(record))
        rows.append(index.index_entity(record))
    for hour, counts in counters.counts_of(records).items():
        for shard in range(counters.SHARDS):
            share = counts if shard == 0 else counters.HourCounts()
            row = {"PartitionKey": counters.PARTITION, "RowKey": counters.row_key(hour, shard)}
            rows.append({**row, **share.to_properties()})
    return rows


def _seed_db(path: Path, table: str, rows: list[dict[str, Any]]) -> None:
    """Add `rows` to `table`'s collection in Azurite's (LokiJS) database file, in the shape
    Azurite stores an upserted entity: the wire JSON the SDK sends, plus its Timestamp/ETag."""
    from azure.data.tables._serialize import _add_entity_properties  # noqa: PLC0415

    db = json.loads(path.read_text())
    (collection,) = [c for c in db["collections"] if c["name"] == f"{_ACCOUNT}${table}"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    etag = "W/\"datetime'" + stamp.replace(":", "%3A") + "'\""
    created_ms = int(time.time() * 1000)
    docs = collection["data"]
    next_id = int(collection.get("maxId") or 0)
    for row in rows:
        next_id += 1
        properties = _add_entity_properties(row)
        properties["Timestamp"] = stamp
        properties["Timestamp@odata.type"] = "Edm.DateTime"
        docs.append(
            {
                "PartitionKey": row["PartitionKey"],
                "RowKey": row["RowKey"],
                "properties": properties,
                "lastModifiedTime": stamp,
                "eTag": etag,
                "meta": {"revision": 0, "created": created_ms, "version": 0},
                "$loki": next_id,
            }
        )
    collection["maxId"] = next_id
    # LokiJS trusts the saved indices (`serializableIndices`): the ids in order, and per
    # indexed property the document positions sorted by its value (ASCII keys here, so
    # Python's order is JavaScript's).
    collection["idIndex"] = [doc["$loki"] for doc in docs]
    for name, binary_index in collection.get("binaryIndices", {}).items():
        binary_index["dirty"] = False
        binary_index["values"] = sorted(range(len(docs)), key=lambda i: docs[i][name])
    path.write_text(json.dumps(db))


def _runtime(connection: str, table: str, now: datetime) -> Runtime:
    """A runtime whose clock stands at `now`: the hour windows of the statistics are then cut
    where the synthetic jobs were spread from, not wherever the wall clock is when asked."""
    env = {
        "AzureWebJobsStorage": connection,
        "SPEECH_ENDPOINT": "http://127.0.0.1:9",  # never called
        "JOBS_TABLE": table,
    }
    settings = Settings.from_env(env)
    rt = Runtime(
        settings,
        StorageClients.from_setting(env, settings.storage_connection),
        clock=lambda: now,
    )
    rt.ensure_resources()
    return rt


def synthetic_jobs(count: int, days: float, now: datetime, seed: int) -> Iterator[JobRecord]:
    """`count` job records created over the last `days`, in the mix the module doc names."""
    rng = random.Random(seed)
    span = days * 86400
    for i in range(count):
        created = now - timedelta(seconds=rng.uniform(0, span))
        record = jobs.new_job(
            container="audio-input",
            name=f"calls/{created:%Y-%m-%d}/agent{i % 40:02}/call-{i:06}.wav",
            etag=f'"0x{i:012X}"',
            size=rng.randint(100_000, 20_000_000),
            now=created,
            timeout=timedelta(hours=30),
            lease=timedelta(minutes=10),
        )
        roll = rng.random()
        turnaround = timedelta(seconds=min(rng.lognormvariate(5.5, 1.2), 100_000))
        end = min(created + turnaround, now)
        audio = replace(record, duration_s=rng.uniform(30, 1200), attempts=1)
        if roll < 0.90:
            yield replace(audio, state=JobState.DONE, finished_at=end, updated=end)
        elif roll < 0.95:
            code = _REASONS[rng.randrange(3)]
            yield jobs.fail(audio, now=end, error_code=code, error_message=f"{code} (bench)")
        elif roll < 0.99:
            code = _REASONS[3 + rng.randrange(2)]
            yield jobs.reject(record, now=end, reason_code=code, reason=f"{code} (bench)")
        else:
            yield replace(audio, state=JobState.RUNNING, updated=end)


def _fill(table: TableClient, records: list[JobRecord]) -> None:
    """Job rows, index rows and counter rows, one request each from 8 threads: Azurite's batch
    transactions copy the whole table for their rollback, which gets slower as it grows."""
    rows: list[dict[str, Any]] = []
    for hour, counts in counters.counts_of(records).items():
        # Spread over the shards as live writes would be (here all counts in shard 0).
        for shard in range(counters.SHARDS):
            share = counts if shard == 0 else counters.HourCounts()
            row = {"PartitionKey": counters.PARTITION, "RowKey": counters.row_key(hour, shard)}
            rows.append({**row, **share.to_properties()})

    def write(i: int) -> None:
        if i % 20_000 == 0:
            print(f"  writing job {i:,} of {len(records):,}", file=sys.stderr)
        table.upsert_entity(to_entity(records[i]))
        table.upsert_entity(index.index_entity(records[i]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(len(records))))
        list(pool.map(table.upsert_entity, rows))


def _time(repeat: int, fn: Callable[[], Any], size: Callable[[Any], int]) -> dict[str, Any]:
    fn()  # warm: connection pool, first-request costs
    times, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "items": size(answer),
    }


def _deep_page(rt: Runtime, pages: int) -> int:
    token, seen = None, 0
    for _ in range(pages):
        page = query.list_jobs(rt, limit=50, continuation=token)
        seen += len(page.items)
        token = page.continuation
    return seen


def _write_cost(rt: Runtime, table: TableClient, writes: int, now: datetime) -> dict[str, Any]:
    """Per state change: job row only, and job row + recorder (index row, counter row)."""
    result = {}
    for label, observer in (
        ("store_only", None),
        ("store_and_recorder", Recorder(table, lambda: 0)),
    ):
        store = JobStore(table, observer=observer)
        created = [
            store.create(
                jobs.new_job(
                    container="audio-input",
                    name=f"writes/{label}/{i}.wav",
                    etag='"1"',
                    size=1,
                    now=now,
                    timeout=timedelta(hours=1),
                    lease=timedelta(0),
                )
            )
            for i in range(writes)
        ]
        started = time.perf_counter()
        for record in created:
            assert record is not None
            store.save(record, jobs.fail(record, now=now, error_code="x", error_message="x"))
        result[label] = round((time.perf_counter() - started) * 1000 / writes, 2)
    return {"ms_per_state_change": result}


def _run(
    connection: str,
    args: argparse.Namespace,
    *,
    records: list[JobRecord] | None = None,
    now: datetime | None = None,
    fill_s: float | None = None,
) -> dict[str, Any]:
    now = now or args.now or datetime.now(UTC)
    rt = _runtime(connection, _TABLE, now)
    table = rt.storage.table_client(rt.settings.jobs_table)
    if records is None or fill_s is None:
        records = list(synthetic_jobs(args.jobs, args.days, now, args.seed))
        started = time.monotonic()
        _fill(table, records)
        fill_s = time.monotonic() - started
    in_24h = sum(r.created >= now - timedelta(hours=24) for r in records)

    def jobs_of(page: query.JobPage) -> int:
        return len(page.items)

    def stats_size(answer: dict[str, Any]) -> int:
        return int(answer["counts"]["done"] + answer["counts"]["failed"])

    def page_size(answer: Any) -> int:
        return len(answer.get_body())

    from azure.functions import HttpRequest  # noqa: PLC0415 - only needed here

    status = HttpRequest(method="GET", url="/api/status", body=b"")
    key = records[len(records) // 2].key
    repeat = args.repeat
    timings = {
        "stats_24h": _time(repeat, lambda: query.stats(rt, 24), stats_size),
        "stats_7d": _time(repeat, lambda: query.stats(rt, 168), stats_size),
        "jobs_newest_50": _time(repeat, lambda: query.list_jobs(rt), jobs_of),
        "jobs_failed_50": _time(repeat, lambda: query.list_jobs(rt, state="failed"), jobs_of),
        "jobs_failed_24h": _time(
            repeat,
            lambda: query.list_jobs(rt, state="failed", since=now - timedelta(hours=24)),
            jobs_of,
        ),
        "jobs_running_50": _time(repeat, lambda: query.list_jobs(rt, state="running"), jobs_of),
        "jobs_prefix_50": _time(
            repeat,
            lambda: query.list_jobs(rt, prefix=f"calls/{now - timedelta(days=2):%Y-%m-%d}/"),
            jobs_of,
        ),
        "jobs_page_20_deep": _time(max(repeat // 2, 1), lambda: _deep_page(rt, 20), int),
        "show_one": _time(repeat, lambda: query.job_detail(rt, key), len),
        "status_page": _time(repeat, lambda: get_status_page(rt, status), page_size),
    }
    return {
        "jobs": args.jobs,
        "days": args.days,
        "jobs_in_last_24h": in_24h,
        "active_jobs": sum(r.is_active for r in records),
        "setup_fill_s": round(fill_s, 1),
        "timings": timings,
        **_write_cost(rt, table, args.writes, now),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
