"""One "instance" taking Speech slots from the shared quota, as a separate process.

``python -m bench.quota_worker --table T --endpoint E --limit 20/2 --grants 30`` (the
storage connection string in ``QUOTA_CONNECTION``) prints ``ready``, waits for the file
``--go`` to exist (so that every worker starts together, on a condition, not a sleep),
takes `--grants` slots of `--purpose` with `shared.app_rate_limit.TableRateLimiter`, and
prints one JSON line: the time stamped on each grant, how long each immediate grant took,
and the limiter's storage calls. ``--pause S`` records a 429 pause of S seconds first.

Used by the integration tests (several processes never exceed the budget together; one
process's pause stops the others) and by ``python -m bench.quota --limiter-only``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from azure.data.tables import TableClient

from devhost.services import wait_for
from shared.app_rate_limit import TableRateLimiter
from shared.rate_limit import CallPurpose, RateLimit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quota_worker")
    parser.add_argument("--table", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--limit", type=RateLimit.parse, required=True)
    parser.add_argument("--grants", type=int, default=0)
    parser.add_argument("--purpose", type=CallPurpose, default=CallPurpose.STATUS)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--go", type=Path, help="start when this file exists")
    args = parser.parse_args(argv)

    table = TableClient.from_connection_string(
        os.environ["QUOTA_CONNECTION"], table_name=args.table
    )
    limiter = TableRateLimiter(table, args.endpoint, args.limit)
    print("ready", flush=True)
    if args.go is not None:
        wait_for(args.go.exists, timeout=60.0, what=f"{args.go} to exist")
    if args.pause:
        limiter.pause(args.pause)
    grants: list[float] = []
    latencies: list[float] = []
    while len(grants) < args.grants:
        started = time.perf_counter()
        if limiter.try_acquire(args.purpose) == 0.0:
            latencies.append(time.perf_counter() - started)
        else:  # a grant after waiting: its latency is the wait, not the limiter's cost
            limiter.acquire(args.purpose, max_wait=3600.0)
        # The time the slot was stamped with in the shared window (not when this process
        # got round to looking at the clock again: a busy machine must not blur the check).
        assert limiter.last_grant is not None
        grants.append(limiter.last_grant)
    json.dump(
        {
            "grants": grants,
            "latencies": latencies,
            "storage_calls": limiter.storage_calls,
            "fallback": limiter.using_fallback,
        },
        sys.stdout,
    )
    print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
