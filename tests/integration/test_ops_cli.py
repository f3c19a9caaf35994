"""``python -m shared.ops``: the CLI answers as the API does, and `reindex` rebuilds lost
bookkeeping (index rows and hourly counters) from the job rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.ops.__main__ import main
from tests.integration.harness import Pipeline, mono_call, stereo_call

pytestmark = pytest.mark.integration

NO_FILE = ["--settings-file", "/nonexistent/local.settings.json"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*NO_FILE, "--json", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 else out.err


@pytest.fixture(scope="module")
def batch(pipeline: Pipeline) -> Pipeline:
    names = {"cli/good.wav": stereo_call(), "cli/good 2.wav": mono_call(), "cli/bad.wav": b""}
    for name, data in names.items():
        pipeline.submit(pipeline.upload(name, data, [["hello"], ["hi"]]))

    def ended() -> bool:
        pipeline.drain()
        return all(r["State"] in ("done", "rejected") for r in pipeline.records())

    pipeline.poll_until(ended)
    return pipeline


def test_the_cli_lists_shows_and_refuses_like_the_api(
    batch: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, page = cli(capsys, "jobs", "--prefix", "cli/")
    assert code == 0
    assert sorted(j["recording"] for j in page["jobs"]) == [
        "cli/bad.wav",
        "cli/good 2.wav",
        "cli/good.wav",
    ]
    key = next(j["key"] for j in page["jobs"] if j["recording"] == "cli/good.wav")
    code, job = cli(capsys, "show", key)
    assert code == 0
    assert [t["state"] for t in job["transitions"]][-1] == "done"
    code, message = cli(capsys, "retry", key)
    assert code == 1
    assert "the job is done" in message
    code, message = cli(capsys, "show", "tj-unknown")
    assert code == 1
    assert "no job with key" in message
    assert main([*NO_FILE, "stats"]) == 0
    assert "done 2" in capsys.readouterr().out


def test_reindex_rebuilds_lost_bookkeeping(
    batch: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    _, before = cli(capsys, "stats")
    _, listed = cli(capsys, "jobs")
    assert before["counts"]["done"] == 2
    assert before["speechRequests"] > 0
    # Lose half of the index and counter rows, as failed bookkeeping writes would.
    lost = [e for e in batch.table.list_entities() if e["PartitionKey"] in ("jobidx", "stats")]
    assert len(lost) >= 3
    for entity in lost[: len(lost) // 2]:
        batch.table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    _, damaged = cli(capsys, "jobs")
    assert damaged["jobs"] != listed["jobs"]  # the damage is visible

    code, summary = cli(capsys, "reindex")
    assert code == 0
    assert summary["jobs"] == 3
    _, after = cli(capsys, "stats")
    assert after["counts"] == before["counts"]
    assert after["topFailureReasons"] == before["topFailureReasons"]
    assert after["audioHoursTranscribed"] == before["audioHoursTranscribed"]
    assert after["turnaroundP50Seconds"] == before["turnaroundP50Seconds"]
    _, relisted = cli(capsys, "jobs")
    assert relisted["jobs"] == listed["jobs"]
    code, again = cli(capsys, "reindex")  # idempotent
    assert again["jobs"] == 3
    assert cli(capsys, "stats")[1]["counts"] == before["counts"]


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main([*NO_FILE, "explode"])
    assert info.value.code == 2
