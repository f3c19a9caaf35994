"""Smoke run of `python -m bench`: the real pipeline on 5 recordings, polling mode.

It runs the benchmark as a user does (a subprocess) and checks the contract of its last
stdout line: every key present, every recording completed, sane numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.services import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = {
    "mode",
    "files",
    "completed",
    "wall_s",
    "files_per_min",
    "overhead_s",
    "speech_requests_per_file",
    "content_downloads_per_file",
    "storage_requests_per_file",
    "peak_rss_mb",
}


@pytest.mark.timeout(120)
def test_bench_reports_a_complete_polling_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--files",
            "5",
            "--processing-time",
            "1",
            "--poll-schedule",
            "*/2 * * * * *",
            "--poll-min-interval",
            "0",
            "--modes",
            "poll",
            "--timeout",
            "60",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.keys() >= KEYS
    assert result["mode"] == "poll"
    assert result["files"] == 5
    assert result["completed"] == 5
    assert set(result["overhead_s"]) == {"p50", "p95", "max"}
    assert result["overhead_samples"] == 5
    assert 0 <= result["overhead_s"]["p50"] <= result["overhead_s"]["max"] < 30
    speech = result["speech_requests_per_file"]
    assert speech["total"] >= 3  # submit, list files, delete: at least
    assert "POST /speechtotext/transcriptions:submit" in speech["by_route"]
    assert not any(route.startswith(("GET /_", "POST /_")) for route in speech["by_route"])
    assert result["content_downloads_per_file"] >= 1
    storage = result["storage_requests_per_file"]
    assert storage["app"] > 0
    assert storage["host"] > 0
    assert 0 < result["peak_rss_mb"] < 1000
    assert len(proc.stdout.strip().splitlines()) == 1  # progress goes to stderr only
    assert "transcribed" in proc.stderr
