"""Capacity and per-file outcomes over real HTTP: shared FIFO slots, per-file processing time
and failures, multi-file jobs, paged file lists.

Time moves by the emulator's clock admin API: every file holds its slot for a fixed
processing time, and a test advances the clock past it, then waits (with a deadline) for
the emulator to act on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devhost.services import Azurite, wait_for
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.result_schema import TranscriptionReport
from tests.emulator.speech import (
    admin,
    client,
    create_body,
    download,
    file_pages,
    files,
    job_id,
    status,
    submit,
    upload,
    wait_done,
)

pytestmark = pytest.mark.integration

SLOT_S = 100  # processing time per file


@pytest.fixture(scope="module")
def wav_url(azurite: Azurite) -> str:
    return upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]), transcript=[["hello there"]])


def _files_stats(adm: httpx.Client) -> dict[str, Any]:
    files_stats: dict[str, Any] = adm.get("/stats").json()["files"]
    return files_stats


def _slots(adm: httpx.Client, running: int, waiting: int, done: dict[str, int]) -> bool:
    got = _files_stats(adm)
    return (got["running"], got["waiting"], got["done"]) == (running, waiting, done)


def _report(api: httpx.Client, entity: dict) -> TranscriptionReport:
    (report,) = [f for f in files(api, entity) if f["kind"] == "TranscriptionReport"]
    return TranscriptionReport.model_validate(download(report))


def test_jobs_share_slots_fifo_and_finish_with_their_last_file(
    speech_emulator_factory, wav_url: str
) -> None:
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--start-delay",
        "0",
        "--processing-time",
        str(SLOT_S),
        "--concurrent-files",
        "2",
    )
    with client(emulator) as api, admin(emulator) as adm:
        multi = submit(api, create_body([wav_url] * 3))
        first = submit(api, create_body([wav_url]))
        second = submit(api, create_body([wav_url]))
        wait_for(lambda: _slots(adm, 2, 3, {}), timeout=10, what="2 files running, 3 waiting")
        # The multi-file job was submitted first: both slots are its files.
        assert [status(api, e) for e in (multi, first, second)] == [
            "Running",
            "NotStarted",
            "NotStarted",
        ]

        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        wait_for(
            lambda: _slots(adm, 2, 1, {"succeeded": 2}), timeout=10, what="next files to start"
        )
        # Its third file and the next job's only file took the freed slots; the job submitted
        # last still waits, and the multi-file job is not done before its last file is.
        assert [status(api, e) for e in (multi, first, second)] == [
            "Running",
            "Running",
            "NotStarted",
        ]

        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        wait_for(lambda: _slots(adm, 1, 0, {"succeeded": 4}), timeout=10, what="last file to start")
        assert wait_done(api, multi)["status"] == "Succeeded"
        assert wait_done(api, first)["status"] == "Succeeded"
        assert status(api, second) == "Running"

        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        assert wait_done(api, second)["status"] == "Succeeded"
        assert _report(api, multi).successful_transcriptions_count == 3
        timelines = adm.get("/stats").json()["jobs"]
    started = {k: _moment(timelines[job_id(e)]["started"]) for k, e in _named(multi, first, second)}
    took = {k: _seconds(timelines[job_id(e)]) for k, e in _named(multi, first, second)}
    assert started["multi"] < started["first"] < started["second"]
    # A file costs one slot time whether alone in its job or one of three: the three-file
    # job took two rounds of two slots, the one-file jobs one slot time each.
    assert 2 * SLOT_S <= took["multi"] < 3 * SLOT_S
    assert SLOT_S <= took["first"] < 2 * SLOT_S
    assert SLOT_S <= took["second"] < 2 * SLOT_S


def _named(multi: dict, first: dict, second: dict) -> list[tuple[str, dict]]:
    return [("multi", multi), ("first", first), ("second", second)]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(timeline: dict[str, str]) -> float:
    return (_moment(timeline["finished"]) - _moment(timeline["started"])).total_seconds()


def test_more_slots_at_run_time_start_waiting_files_at_once(
    speech_emulator_factory, wav_url: str
) -> None:
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--start-delay",
        "0",
        "--processing-time",
        "3600",
        "--concurrent-files",
        "1",
    )
    with client(emulator) as api, admin(emulator) as adm:
        jobs = [submit(api, create_body([wav_url])) for _ in range(3)]
        wait_for(lambda: _slots(adm, 1, 2, {}), timeout=10, what="one running, two waiting")
        assert [status(api, e) for e in jobs] == ["Running", "NotStarted", "NotStarted"]
        bad = adm.patch("/config", json={"concurrent_files": 0})
        assert bad.status_code == 400
        assert "concurrent_files" in bad.json()["message"]
        changed = adm.patch("/config", json={"concurrent_files": 3})
        assert changed.json()["concurrent_files"] == 3
        wait_for(lambda: _slots(adm, 3, 0, {}), timeout=10, what="all three running")
        assert [status(api, e) for e in jobs] == ["Running"] * 3


def test_a_failed_file_is_in_the_report_and_the_job_succeeds(
    speech_emulator_factory, wav_url: str
) -> None:
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--start-delay",
        "0",
        "--processing-time",
        str(SLOT_S),
        "--concurrent-files",
        "1",
    )
    with client(emulator) as api, admin(emulator) as adm:
        entity = submit(api, create_body([wav_url] * 3))
        wait_for(lambda: _slots(adm, 1, 2, {}), timeout=10, what="first file running")
        # Whether a file fails is decided as it takes its slot: only the second one does.
        adm.patch("/config", json={"file_fail_share": 1, "file_fail_code": "InternalServerError"})
        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        wait_for(
            lambda: _slots(adm, 1, 1, {"succeeded": 1}), timeout=10, what="second file running"
        )
        adm.patch("/config", json={"file_fail_share": 0})
        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        wait_for(
            lambda: _slots(adm, 1, 0, {"succeeded": 1, "failed": 1}),
            timeout=10,
            what="third file running",
        )
        assert status(api, entity) == "Running"
        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        done = wait_done(api, entity)
        assert done["status"] == "Succeeded"
        assert "error" not in done["properties"]
        report = _report(api, entity)
        names = sorted(f["name"] for f in files(api, entity) if f["kind"] == "Transcription")
    assert names == ["contenturl_0.json", "contenturl_2.json"]  # none for the failed input
    assert (report.successful_transcriptions_count, report.failed_transcriptions_count) == (2, 1)
    assert [d.status for d in report.details] == ["Succeeded", "Failed", "Succeeded"]
    failed = report.details[1]
    assert failed.source == wav_url.split("?", maxsplit=1)[0]
    assert failed.error_kind == "InternalServerError"
    assert "file-fail-share" in (failed.error_message or "")


def test_all_files_failed_fails_the_job(speech_emulator_factory, wav_url: str) -> None:
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--instant",
        "--file-fail-share",
        "1",
        "--file-fail-code",
        "InvalidData",
    )
    with client(emulator) as api:
        entity = wait_done(api, submit(api, create_body([wav_url] * 2)))
        assert entity["status"] == "Failed"
        assert entity["properties"]["error"]["code"] == "InvalidData"
        assert [f["kind"] for f in files(api, entity)] == ["TranscriptionReport"]
        report = _report(api, entity)
    assert [d.status for d in report.details] == ["Failed", "Failed"]
    assert {d.error_kind for d in report.details} == {"InvalidData"}


def test_a_250_file_job_pages_its_files(speech_emulator_factory, wav_url: str) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    urls = [wav_url] * 250  # one blob, 250 inputs
    with client(emulator) as api:
        entity = wait_done(api, submit(api, create_body(urls)), timeout=120)
        assert entity["status"] == "Succeeded"
        pages = file_pages(api, entity)
        assert [len(p) for p in pages] == [100, 100, 51]  # 250 results and the report
        first_page = api.get(f"/transcriptions/{job_id(entity)}/files").json()
        query = parse_qs(urlsplit(first_page["@nextLink"]).query)
        assert (query["skip"], query["top"]) == (["100"], ["100"])
        small = file_pages(api, entity, top=30)
        assert len(small) == 9
        too_big = api.get(f"/transcriptions/{job_id(entity)}/files", params={"top": 101})
        assert too_big.status_code == 400
        assert too_big.json()["innerError"]["code"] == "UnsupportedPagination"
    listed = [f for page in pages for f in page]
    assert [f["name"] for f in small[0]] == [f["name"] for f in listed[:30]]
    names = [f["name"] for f in listed]
    assert len(set(names)) == 251
    assert set(names) == {f"contenturl_{i}.json" for i in range(250)} | {"report.json"}
    assert len({f["self"] for f in listed}) == 251
    # Names are not the match key: each result's source is. Here all sources are the blob.
    sample = download(next(f for f in listed if f["name"] == "contenturl_249.json"))
    assert sample["source"] == wav_url.split("?", maxsplit=1)[0]


def test_a_deleted_job_gives_up_its_waiting_files(speech_emulator_factory, wav_url: str) -> None:
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--start-delay",
        "0",
        "--processing-time",
        str(SLOT_S),
        "--concurrent-files",
        "1",
    )
    with client(emulator) as api, admin(emulator) as adm:
        doomed = submit(api, create_body([wav_url] * 3))
        waiting = submit(api, create_body([wav_url]))
        wait_for(lambda: _slots(adm, 1, 3, {}), timeout=10, what="first file running")
        assert api.delete(f"/transcriptions/{job_id(doomed)}").status_code == 204
        # Its running file keeps the slot for its time; its waiting files never take one.
        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        wait_for(
            lambda: _slots(adm, 1, 0, {"succeeded": 1}), timeout=10, what="the other job to start"
        )
        assert status(api, waiting) == "Running"
        adm.post("/clock", json={"advance_seconds": SLOT_S + 1})
        assert wait_done(api, waiting)["status"] == "Succeeded"
