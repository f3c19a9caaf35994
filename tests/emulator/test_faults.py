"""Fault injection and the admin API: rate limit, 500/503, failed and vanishing jobs, latency."""

from __future__ import annotations

import time

import httpx
import pytest

from devhost.services import Azurite, wait_for
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.speech import admin, client, create_body, job_id, submit, upload, wait_done

pytestmark = pytest.mark.integration


def test_rate_limit_answers_429_with_retry_after(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--rate-limit", "5/30")
    with client(emulator) as api, admin(emulator) as adm:
        statuses = [api.get("/transcriptions").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        throttled = api.get("/transcriptions")
        assert throttled.json()["code"] == "TooManyRequests"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 30
        # Admin calls and content downloads are not Speech calls: never throttled or counted.
        assert adm.get("/stats").status_code == 200
        stats = adm.get("/stats").json()
        assert stats["requests"]["GET /speechtotext/transcriptions"] == {"200": 5, "429": 3}
        assert adm.patch("/config", json={"rate_limit": None}).json()["rate_limit"] is None
        assert api.get("/transcriptions").status_code == 200


def test_error_rate_and_runtime_config(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--error-rate", "1", "--seed", "7")
    with client(emulator) as api, admin(emulator) as adm:
        answers = [api.get("/transcriptions") for _ in range(20)]
        codes = {r.status_code for r in answers}
        assert codes == {500, 503}
        assert {r.json()["code"] for r in answers} == {"InternalServerError", "ServiceUnavailable"}
        config = adm.patch("/config", json={"error_rate": 0}).json()
        assert config["error_rate"] == 0
        assert api.get("/transcriptions").status_code == 200
        bad = adm.patch("/config", json={"error_rate": 5})
        assert bad.status_code == 400
        assert "error_rate" in bad.json()["message"]
        unknown = adm.patch("/config", json={"warp_speed": 9})
        assert unknown.status_code == 400
        assert "warp_speed" in unknown.json()["message"]
        assert adm.get("/config").json()["error_rate"] == 0


def test_fail_share_and_vanish_share(speech_emulator_factory, azurite: Azurite) -> None:
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--instant", "--fail-share", "1", "--fail-code", "QuotaViolation"
    )
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api, admin(emulator) as adm:
        failed = wait_done(api, submit(api, create_body([url])))
        assert failed["status"] == "Failed"
        assert failed["properties"]["error"]["code"] == "QuotaViolation"
        adm.patch("/config", json={"fail_share": 0, "vanish_share": 1})
        entity = submit(api, create_body([url]))
        path = f"/transcriptions/{job_id(entity)}"
        wait_for(lambda: api.get(path).status_code == 404, timeout=10, what="job to vanish")
        stats = adm.get("/stats").json()
        assert stats["transcriptions"]["events"]["vanished"] == 1
        assert stats["jobs"][job_id(entity)]["status"] == "Vanished"


def test_latency(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--latency", "0.4")
    with client(emulator) as api:
        started = time.monotonic()
        assert api.get("/transcriptions").status_code == 200
        assert time.monotonic() - started >= 0.4


def test_stats_and_reset(speech_emulator_factory, azurite: Azurite) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api, admin(emulator) as adm:
        entity = wait_done(api, submit(api, create_body([url])))
        result = next(
            f
            for f in api.get(f"/transcriptions/{job_id(entity)}/files").json()["values"]
            if f["kind"] == "Transcription"
        )
        assert httpx.get(result["links"]["contentUrl"]).status_code == 200
        stats = adm.get("/stats").json()
        assert stats["requests"]["POST /speechtotext/transcriptions:submit"] == {"201": 1}
        assert stats["requests"]["GET /speechtotext/transcriptions/{id}/files"] == {"200": 1}
        assert stats["contentDownloads"] == {"200": 1}
        assert stats["transcriptions"]["live"] == 1
        assert stats["jobs"][job_id(entity)]["finished"]
        assert adm.post("/reset").status_code == 204
        after = adm.get("/stats").json()
        assert after["requests"] == {}
        assert after["jobs"] == {}
        assert api.get(f"/transcriptions/{job_id(entity)}").status_code == 404
        assert adm.post("/clock", json={"advance_seconds": -5}).status_code == 400


def test_a_new_rate_limit_starts_a_new_window(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--rate-limit", "2/600")
    with client(emulator) as api, admin(emulator) as adm:
        assert [api.get("/transcriptions").status_code for _ in range(3)] == [200, 200, 429]
        adm.patch("/config", json={"rate_limit": None})
        # Calls made under the old limit do not count against a limit set later.
        adm.patch("/config", json={"rate_limit": "2/600"})
        assert [api.get("/transcriptions").status_code for _ in range(3)] == [200, 200, 429]
