"""Smoke run of `python -m bench.ops_bench` on a few hundred jobs: the contract of its output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devhost.services import PROJECT_ROOT

pytestmark = pytest.mark.integration

QUESTIONS = {
    "stats_24h",
    "stats_7d",
    "jobs_newest_50",
    "jobs_failed_50",
    "jobs_failed_24h",
    "jobs_running_50",
    "jobs_prefix_50",
    "jobs_page_20_deep",
    "show_one",
    "status_page",
}


def run_bench(fill: str, now: str | None = None) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ops_bench",
            "--jobs",
            "400",
            "--repeat",
            "1",
            "--writes",
            "5",
            "--fill",
            fill,
            *(["--now", now] if now else []),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict = json.loads(proc.stdout)
    return result


def test_ops_bench_times_every_question() -> None:
    result = run_bench("seed")
    assert result["jobs"] == 400
    assert set(result["timings"]) == QUESTIONS
    for name, timing in result["timings"].items():
        assert timing["median_ms"] > 0, name
    assert result["timings"]["jobs_newest_50"]["items"] == 50
    # stats counts what the synthetic jobs add up to: most of them are done
    assert result["timings"]["stats_7d"]["items"] > 300
    assert set(result["ms_per_state_change"]) == {"store_only", "store_and_recorder"}


def test_a_seeded_table_answers_like_one_filled_through_requests() -> None:
    # The 100,000-job run writes Azurite's database file directly (the request path is too
    # slow there); every answer must be the one the same rows written by upserts give.
    # Both runs stand at the same instant: the 7-day window is cut at an hour boundary, so
    # with the wall clock the rows in its first, partial hour depend on when each run starts.
    now = "2026-03-14T15:09:26+00:00"
    seeded, requested = run_bench("seed", now), run_bench("requests", now)
    assert seeded["fill"] == "seed"

    def answers(result: dict) -> dict[str, int]:
        # The status page's "items" is its size in bytes, which depends on the clock (ages,
        # chart labels) as well as on the rows: every other question counts rows.
        return {n: t["items"] for n, t in result["timings"].items() if n != "status_page"}

    assert answers(seeded) == answers(requested)
    assert len(answers(seeded)) == len(QUESTIONS) - 1
