"""Smoke run of `python -m bench.azurite_scale` with small steps: one JSON line per step."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devhost.services import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_prints_one_measurement_per_step() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.azurite_scale", "--steps", "20,60", "--heads", "10"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["blobs"] for line in lines] == [20, 60]
    for line in lines:
        assert line["uploads_per_s"] > 0
        assert line["head_ms_median"] > 0
