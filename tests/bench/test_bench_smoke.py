"""Smoke run of `python -m bench`: the real pipeline on 5 recordings, polling then web hook.

It runs the benchmark as a user does (a subprocess) and checks the contract of its stdout:
one JSON line per mode, the web hook run last, every key present, every recording
completed, sane numbers.
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


@pytest.mark.timeout(150)
def test_bench_reports_complete_polling_and_webhook_runs(tmp_path: Path) -> None:
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
            "--webhook-poll-schedule",
            "0 0 * * * *",
            "--timeout",
            "45",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [r["mode"] for r in lines] == ["poll", "webhook"]  # progress goes to stderr only
    for result in lines:
        assert result.keys() >= KEYS
        assert result["files"] == 5
        assert result["completed"] == 5
        assert set(result["overhead_s"]) == {"p50", "p95", "max"}
        assert result["overhead_samples"] == 5
        assert 0 <= result["overhead_s"]["p50"] <= result["overhead_s"]["max"] < 30
        speech = result["speech_requests_per_file"]
        assert speech["total"] >= 3  # submit, list files, delete: at least
        assert "POST /speechtotext/transcriptions:submit" in speech["by_route"]
        assert not any("/_emulator" in route for route in speech["by_route"])
        assert result["content_downloads_per_file"] >= 1
        storage = result["storage_requests_per_file"]
        assert storage["app"] > 0
        assert storage["host"] > 0
        assert 0 < result["peak_rss_mb"] < 1000
    webhook = lines[1]
    # The hourly poll never ran during the web hook run: the callbacks did the work.
    delivered = webhook["webhook_deliveries"]["TranscriptionCompletion"]
    assert sum(n for status, n in delivered.items() if status.startswith("2")) == 5
    assert "poll" not in webhook["function_runs"]
    assert "transcribed" in proc.stderr
