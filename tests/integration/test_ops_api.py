"""The operator view over real HTTP: `python -m devhost` runs the app against Azurite and the
Speech emulator, a mixed batch goes through it, and the API's answers are checked against what
actually happened (job rows, outputs, error reports), including a retry that ends in
transcripts. The status page is loaded in headless Chromium (`test_status_page.py`) against the
app with a batch of its own.

The batch is `tests.integration.ops_app`'s: injected service failures (one named with
markup), good recordings and bad inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.services import Azurite, wait_for
from shared.error_reports import advice_for
from shared.output_names import error_report_name
from tests.integration.ops_app import ALL, GOOD, INJECTED, App, running_ops_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_ops_app(azurite, tmp_path_factory.mktemp("ops")) as running:
        yield running


def test_stats_match_what_happened(app: App) -> None:
    rows = app.rows()
    stats = app.get("/api/stats", hours=24).json()
    truth = {s: sum(r["State"] == s for r in rows.values()) for s in ("done", "failed", "rejected")}
    assert truth == {"done": 4, "failed": 2, "rejected": 2}
    for state, count in truth.items():
        assert stats["counts"][state] == count, state
    assert stats["inFlight"] == 0
    assert sum(h["done"] for h in stats["perHour"]) == 4
    assert len(stats["perHour"]) == 24
    reasons = {r["reasonCode"]: r for r in stats["topFailureReasons"]}
    assert {code: r["count"] for code, r in reasons.items()} == {
        "InvalidAudioFormat": 2,
        "EmptyFile": 1,
        "NotAudio": 1,
    }
    assert reasons["NotAudio"]["advice"] == advice_for("NotAudio")
    audio_s = sum(r["DurationSeconds"] for r in rows.values() if r["State"] == "done")
    assert stats["audioHoursTranscribed"] == pytest.approx(audio_s / 3600, abs=1e-4)
    assert stats["turnaroundP50Seconds"] is not None
    assert stats["turnaroundP95Seconds"] >= stats["turnaroundP50Seconds"]
    # Every recording that reached the service cost at least a POST and a status read.
    assert stats["speechRequests"] >= 2 * 6
    assert stats["speechRequestsPerRecording"] >= 1


def test_jobs_list_newest_first_with_filters_and_pages(app: App) -> None:
    rows = app.rows()
    listed = app.jobs(limit=200)
    assert sorted(j["recording"] for j in listed) == sorted(ALL)
    created = [j["created"] for j in listed]
    assert created == sorted(created, reverse=True)
    for job in listed:
        row = rows[job["recording"]]
        assert job["key"] == row["RowKey"]
        assert job["state"] == row["State"]
        assert job["attempts"] == row.get("Attempts", 0)
        assert job["reasonCode"] == (row.get("ErrorCode") or None)
    assert {j["recording"] for j in app.jobs(state="failed")} == set(INJECTED)
    assert {j["recording"] for j in app.jobs(prefix="good/")} == set(GOOD)
    assert app.jobs(since="2999-01-01T00:00:00Z") == []
    assert len(app.jobs(since="1h")) == len(ALL)

    seen: list[str] = []
    token: str | None = None
    while True:
        params = {"limit": 3, **({"continuation": token} if token else {})}
        page = app.get("/api/jobs", **params).json()
        assert len(page["jobs"]) <= 3
        seen.extend(j["key"] for j in page["jobs"])
        token = page["continuation"]
        if not token:
            break
    assert seen == [j["key"] for j in listed]  # same order, no repeats, nothing missed

    done = next(j for j in listed if j["state"] == "done")
    assert done["outputs"]["container"] == app.env["OUTPUT_CONTAINER"]
    rejected = next(j for j in listed if j["recording"] == "bad/empty.wav")
    assert rejected["errorReport"]["name"] == error_report_name("bad/empty.wav")
    assert rejected["advice"] == advice_for("EmptyFile")


def test_one_job_in_full(app: App) -> None:
    row = app.rows()["good/stereo 1.wav"]
    job = app.get(f"/api/jobs/{row['RowKey']}").json()
    assert job["state"] == "done"
    states = [t["state"] for t in job["transitions"]]
    assert states[0] == "received"
    assert states[-1] == "done"
    assert "submitted" in states
    assert job["outputs"]["names"] == [
        n for n in app.names(app.env["OUTPUT_CONTAINER"]) if n.startswith("good/stereo 1.wav/")
    ]
    assert "good/stereo 1.wav/channel_1.json" in job["outputs"]["names"]


def test_bad_requests_say_what_why_and_what_to_do(app: App) -> None:
    for path, params, status, code in [
        ("/api/jobs/tj-0000000000", {}, 404, "UnknownJob"),
        ("/api/jobs", {"state": "exploded"}, 400, "BadState"),
        ("/api/jobs", {"since": "yesterday-ish"}, 400, "BadSince"),
        ("/api/jobs", {"continuation": "bm9wZQ"}, 400, "BadContinuation"),
        ("/api/stats", {"hours": "0"}, 400, "BadHours"),
    ]:
        response = app.get(path, **params)
        assert response.status_code == status, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == code
        assert error["message"]
        assert error["whatToDo"]


def test_retry_refusals_and_a_retry_that_ends_in_transcripts(app: App) -> None:
    rows = app.rows()
    for name, state in [("good/mono 1.wav", "done"), ("bad/text.wav", "rejected")]:
        response = app.api.post(f"/api/jobs/{rows[name]['RowKey']}/retry")
        assert response.status_code == 409, name
        error = response.json()["error"]
        assert error["code"] == "NotFailed"
        assert state in error["message"]
        assert "upload it again" in error["whatToDo"]
    assert app.api.post("/api/jobs/tj-nope/retry").status_code == 404

    name = "inject/second call.wav"
    key = rows[name]["RowKey"]
    errors = app.env["ERROR_CONTAINER"]
    assert error_report_name(name) in app.names(errors)
    first = app.api.post(f"/api/jobs/{key}/retry")
    assert first.status_code == 202, first.text
    assert first.json()["retried"] is True
    assert error_report_name(name) not in app.names(errors)  # the old outcome is gone
    again = app.api.post(f"/api/jobs/{key}/retry")
    assert again.status_code == 200  # idempotent: no second attempt
    assert again.json()["retried"] is False

    def finished() -> dict[str, Any] | None:
        job = app.get(f"/api/jobs/{key}").json()
        return job if job["state"] in ("done", "failed", "rejected") else None

    job = wait_for(finished, timeout=60, what="the retried job to end")
    assert job["state"] == "done"
    assert job["attempts"] == 1  # the new attempt's count starts afresh
    steps = [(t["state"], t["reasonCode"]) for t in job["transitions"]]
    failed_at = steps.index(("failed", "InvalidAudioFormat"))
    assert steps[failed_at + 1] == ("deferred", "RetryRequested")
    assert steps[-1][0] == "done"
    outputs = app.names(app.env["OUTPUT_CONTAINER"])
    assert f"{name}/channel_0.json" in outputs
    assert error_report_name(name) not in app.names(errors)  # one visible outcome again
    stats = app.get("/api/stats").json()
    assert stats["counts"]["done"] == 5
    assert stats["counts"]["failed"] == 1
    assert app.api.post(f"/api/jobs/{key}/retry").json()["retried"] is False


def test_the_status_page_is_served_with_a_nonce_policy(app: App, tmp_path: Path) -> None:
    response = app.get("/api/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert response.text.count(f'nonce="{nonce[1]}"') == 2  # the page's own style and script
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in response.text
