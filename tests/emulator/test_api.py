"""The emulator's REST contract over real HTTP: endpoints, auth, versions, paging, errors."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devhost.services import Azurite, SpeechEmulator
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.speech import (
    API_VERSION,
    admin,
    client,
    create_body,
    download,
    files,
    job_id,
    submit,
    upload,
    wait_done,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def audio_url(azurite: Azurite) -> str:
    return upload(azurite, encode([bursts([(0.2, 0.8)], 1.0)]), transcript=[["hello"]])


def _error(response: httpx.Response, status: int, code: str, inner: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    if inner is not None:
        assert body["innerError"]["code"] == inner


def test_auth_failures(scripted_emulator: SpeechEmulator) -> None:
    url = f"{scripted_emulator.url}/speechtotext/transcriptions?api-version={API_VERSION}"
    _error(httpx.get(url), 401, "Unauthorized")
    _error(httpx.get(url, headers={"Ocp-Apim-Subscription-Key": "wrong"}), 401, "Unauthorized")
    # Bearer tokens are refused unless --accept-bearer.
    _error(httpx.get(url, headers={"Authorization": "Bearer abc"}), 401, "Unauthorized")
    ok = httpx.get(url, headers={"Ocp-Apim-Subscription-Key": scripted_emulator.key})
    assert ok.status_code == 200


def test_non_ascii_keys_are_refused_not_a_crash(scripted_emulator: SpeechEmulator) -> None:
    url = f"{scripted_emulator.url}/speechtotext/transcriptions?api-version={API_VERSION}"
    for raw in ("ключ".encode(), b"\xe9\xff", scripted_emulator.key.encode() + "é".encode()):
        _error(httpx.get(url, headers={b"Ocp-Apim-Subscription-Key": raw}), 401, "Unauthorized")


@pytest.mark.parametrize("sig", ["é", "签名" * 20, "%FF%FE", "%ED%A0%80"])
def test_content_url_with_a_non_ascii_signature_is_refused_not_a_crash(
    scripted_emulator: SpeechEmulator, sig: str
) -> None:
    # The token is checked before the file is looked up: no job is needed to reach it.
    url = f"{scripted_emulator.url}/_content/{uuid.uuid4()}/{uuid.uuid4()}/contenturl_0.json"
    refused = httpx.get(f"{url}?se=2099-01-01T00%3A00%3A00Z&sp=r&sig={sig}")
    assert refused.status_code == 403, refused.text
    assert "<Code>AuthenticationFailed</Code>" in refused.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/webhooks",
            '{"displayName": "hook", "webUrl": "http://127.0.0.1:9/hook", '
            '"events": {"transcriptionCompletion": true}, "properties": {"secret": "\\ud800"}}',
        ),
        (
            "/webhooks",
            '{"displayName": "\\udfff hook", "webUrl": "http://127.0.0.1:9/hook", '
            '"events": {"transcriptionCompletion": true}}',
        ),
        (
            "/transcriptions:submit",
            '{"displayName": "call \\ud83d", "locale": "en-US", '
            '"contentUrls": ["http://127.0.0.1:9/a.wav"], "properties": {"timeToLiveHours": 48}}',
        ),
    ],
)
def test_lone_surrogate_escapes_in_a_body_are_a_400_not_a_crash(
    scripted_emulator: SpeechEmulator, path: str, body: str
) -> None:
    with client(scripted_emulator) as api:
        response = api.post(path, content=body, headers={"Content-Type": "application/json"})
        _error(response, 400, "InvalidRequest", "InvalidRequestBodyFormat")
        assert "surrogate" in response.json()["message"]
        # The same body with real non-ASCII text is fine.
        fixed = json.loads(
            body.replace("\\ud83d", "📞").replace("\\ud800", "clé").replace("\\udfff", "ü")
        )
        created = api.post(path, json=fixed)
        assert created.status_code == 201, created.text
        assert api.delete(created.headers["Location"]).status_code == 204  # leave no trace


def test_bearer_accepted_when_enabled(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--accept-bearer")
    url = f"{emulator.url}/speechtotext/transcriptions?api-version={API_VERSION}"
    assert httpx.get(url, headers={"Authorization": "Bearer any-token"}).status_code == 200
    _error(httpx.get(url, headers={"Authorization": "Basic abc"}), 401, "Unauthorized")


@pytest.mark.parametrize("version", [None, "v3.2", "2024-05-15-preview"])
def test_api_version_is_required(scripted_emulator: SpeechEmulator, version: str | None) -> None:
    params = {} if version is None else {"api-version": version}
    response = httpx.get(
        f"{scripted_emulator.url}/speechtotext/transcriptions",
        params=params,
        headers={"Ocp-Apim-Subscription-Key": scripted_emulator.key},
    )
    _error(response, 400, "InvalidRequest", "InvalidParameterValue")
    assert "2024-11-15" in response.json()["message"]


def test_both_versions_accepted(scripted_emulator: SpeechEmulator) -> None:
    with client(scripted_emulator) as api:
        for version in ("2024-11-15", "2025-10-15"):
            response = api.get("/transcriptions", params={"api-version": version})
            assert response.status_code == 200
            assert response.json()["@nextLink"] is None


def test_create_get_and_delete(scripted_emulator: SpeechEmulator, audio_url: str) -> None:
    with client(scripted_emulator) as api:
        body = create_body([audio_url])
        body["customProperties"] = {"call": "42"}
        body["description"] = "a test"
        response = api.post("/transcriptions:submit", json=body)
        assert response.status_code == 201
        entity = response.json()
        assert response.headers["Location"] == entity["self"]
        assert "id" not in entity
        assert "contentUrls" not in entity
        assert entity["displayName"] == body["displayName"]
        assert entity["customProperties"] == {"call": "42"}
        assert entity["description"] == "a test"
        assert entity["properties"]["timeToLiveHours"] == 48
        assert entity["model"]["self"].startswith(f"{scripted_emulator.url}/speechtotext/models/")
        assert entity["links"]["files"].startswith(entity["self"].split("?")[0] + "/files")
        uuid.UUID(job_id(entity))
        done = wait_done(api, entity)
        assert done["status"] == "Succeeded"
        assert done["properties"]["durationMilliseconds"] == 1000
        assert "Retry-After" not in api.get(f"/transcriptions/{job_id(entity)}").headers
        assert api.delete(f"/transcriptions/{job_id(entity)}").status_code == 204
        _error(api.get(f"/transcriptions/{job_id(entity)}"), 404, "NotFound")
        assert api.delete(f"/transcriptions/{job_id(entity)}").status_code == 204


def test_update_transcription(scripted_emulator: SpeechEmulator, audio_url: str) -> None:
    with client(scripted_emulator) as api:
        entity = submit(api, create_body([audio_url]))
        response = api.patch(f"/transcriptions/{job_id(entity)}", json={"displayName": "renamed"})
        assert response.status_code == 200
        assert response.json()["displayName"] == "renamed"
        _error(
            api.patch(f"/transcriptions/{job_id(entity)}", json={"locale": "de-DE"}),
            400,
            "InvalidRequest",
        )


def test_validation_errors_over_http(scripted_emulator: SpeechEmulator, audio_url: str) -> None:
    with client(scripted_emulator) as api:
        cases = [
            (
                {
                    "locale": "en-US",
                    "contentUrls": [audio_url],
                    "properties": {"timeToLiveHours": 48},
                },
                "InvalidPayload",
            ),
            (
                {**create_body([audio_url]), "contentContainerUrl": "https://x/c"},
                "OnlyOneOfUrlsOrContainerOrDataset",
            ),
            (create_body(["https://x/a.wav"] * 1001), "ExceededNumberOfRecordingsUris"),
            (create_body([audio_url], channels=[0, 5]), "InvalidChannels"),
            ({**create_body([audio_url]), "properties": {}}, "InvalidTimeToLive"),
            (
                {
                    **create_body([audio_url]),
                    "model": {"self": f"http://x/speechtotext/models/{uuid.uuid4()}"},
                },
                "InvalidModelUri",
            ),
        ]
        for body, inner in cases:
            _error(api.post("/transcriptions:submit", json=body), 400, "InvalidRequest", inner)
        bad_json = api.post(
            "/transcriptions:submit",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        _error(bad_json, 400, "InvalidRequest", "InvalidRequestBodyFormat")


def test_locales(scripted_emulator: SpeechEmulator) -> None:
    with client(scripted_emulator) as api:
        assert "en-US" in api.get("/transcriptions/locales").json()["Submit"]


def test_unknown_ids_and_paths(scripted_emulator: SpeechEmulator) -> None:
    with client(scripted_emulator) as api:
        missing = uuid.uuid4()
        _error(api.get(f"/transcriptions/{missing}"), 404, "NotFound")
        _error(api.get(f"/transcriptions/{missing}/files"), 404, "NotFound")
        _error(api.get(f"/webhooks/{missing}"), 404, "NotFound")
        _error(api.get("/nothing-here"), 404, "NotFound")
        _error(api.put("/transcriptions"), 405, "NotAllowed")


def test_paging_and_filter(scripted_emulator: SpeechEmulator, audio_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    with client(scripted_emulator) as api:
        created = []
        for i in range(5):
            body = create_body([audio_url])
            body["displayName"] = f"page-{tag}-{i % 2}"
            created.append(submit(api, body))
        for entity in created:
            wait_done(api, entity)
        seen: list[str] = []
        response = api.get("/transcriptions", params={"top": 2})
        pages = 0
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["values"]) <= 2
            seen += [e["self"] for e in body["values"]]
            pages += 1
            if body["@nextLink"] is None:
                break
            next_link = body["@nextLink"]
            assert next_link.startswith(f"{scripted_emulator.url}/speechtotext/transcriptions?")
            assert parse_qs(urlsplit(next_link).query)["top"] == ["2"]
            response = httpx.get(
                next_link, headers={"Ocp-Apim-Subscription-Key": scripted_emulator.key}
            )
        assert {e["self"] for e in created} <= set(seen)
        assert len(seen) == len(set(seen))
        assert pages >= 3
        only = api.get("/transcriptions", params={"filter": f"displayName eq 'page-{tag}-1'"})
        names = [e["displayName"] for e in only.json()["values"]]
        assert names == [f"page-{tag}-1", f"page-{tag}-1"]
        status = api.get(
            "/transcriptions",
            params={"filter": f"displayName eq 'page-{tag}-0' and status eq 'Succeeded'"},
        )
        assert len(status.json()["values"]) == 3
        _error(
            api.get("/transcriptions", params={"top": 101}),
            400,
            "InvalidRequest",
            "UnsupportedPagination",
        )
        _error(api.get("/transcriptions", params={"skip": -1}), 400, "InvalidRequest")
        _error(
            api.get("/transcriptions", params={"filter": "displayName like 'x'"}),
            400,
            "InvalidRequest",
            "UnsupportedFilter",
        )


def test_files_and_content_urls(scripted_emulator: SpeechEmulator, audio_url: str) -> None:
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, create_body([audio_url])))
        listed = files(api, entity)
        assert sorted(f["kind"] for f in listed) == ["Transcription", "TranscriptionReport"]
        by_kind = {f["kind"]: f for f in listed}
        result_file = by_kind["Transcription"]
        assert result_file["name"] == "contenturl_0.json"
        assert by_kind["TranscriptionReport"]["name"] == "report.json"
        content = download(result_file)
        assert content["source"] == audio_url.split("?", maxsplit=1)[0]
        assert result_file["properties"]["size"] == len(
            httpx.get(result_file["links"]["contentUrl"]).content
        )
        single = api.get(result_file["self"].replace(f"{scripted_emulator.url}/speechtotext", ""))
        assert single.status_code == 200
        assert single.json()["name"] == "contenturl_0.json"
        paged = api.get(f"/transcriptions/{job_id(entity)}/files", params={"top": 1})
        assert len(paged.json()["values"]) == 1
        assert paged.json()["@nextLink"]
        named = api.get(
            f"/transcriptions/{job_id(entity)}/files",
            params={"filter": "kind eq 'TranscriptionReport'"},
        )
        assert [f["name"] for f in named.json()["values"]] == ["report.json"]
        _error(api.get(f"/transcriptions/{job_id(entity)}/files/{uuid.uuid4()}"), 404, "NotFound")
        _error(
            api.get(f"/transcriptions/{job_id(entity)}/files", params={"sasLifetimeMinutes": 0}),
            400,
            "InvalidRequest",
            "InvalidSasValidityDuration",
        )
        # A tampered token is refused like a bad SAS.
        tampered = result_file["links"]["contentUrl"].replace("sig=", "sig=x")
        refused = httpx.get(tampered)
        assert refused.status_code == 403
        assert "<Code>AuthenticationFailed</Code>" in refused.text


def test_content_url_expires(speech_emulator_factory, audio_url: str) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    with client(emulator) as api, admin(emulator) as adm:
        entity = wait_done(api, submit(api, create_body([audio_url])))
        short = api.get(f"/transcriptions/{job_id(entity)}/files", params={"sasLifetimeMinutes": 1})
        result_file = next(f for f in short.json()["values"] if f["kind"] == "Transcription")
        assert httpx.get(result_file["links"]["contentUrl"]).status_code == 200
        assert adm.post("/clock", json={"advance_seconds": 120}).status_code == 200
        expired = httpx.get(result_file["links"]["contentUrl"])
        assert expired.status_code == 403
        assert "expiry" in expired.text
        assert adm.get("/stats").json()["contentDownloads"] == {"200": 1, "403": 1}


def test_files_empty_until_done(speech_emulator_factory, azurite: Azurite) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--start-delay", "3600")
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api:
        entity = submit(api, create_body([url]))
        got = api.get(f"/transcriptions/{job_id(entity)}")
        assert got.json()["status"] == "NotStarted"
        assert int(got.headers["Retry-After"]) >= 0
        assert files(api, entity) == []


def test_models(speech_emulator_factory, tmp_path) -> None:
    phrases = tmp_path / "calls.txt"
    phrases.write_text("my card was declined\nplease cancel my order\n", encoding="utf-8")
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--custom-model", f"CallCenter={phrases}"
    )
    model_url = emulator.custom_model_url("CallCenter")
    with client(emulator) as api:
        custom = api.get("/models").json()["values"]
        assert [m["displayName"] for m in custom] == ["CallCenter"]
        assert custom[0]["self"] == model_url
        assert custom[0]["locale"] == "en-US"
        model_id = model_url.split("?", maxsplit=1)[0].rsplit("/", 1)[1]
        one = api.get(f"/models/{model_id}")
        assert one.status_code == 200
        assert one.json()["displayName"] == "CallCenter"
        _error(api.get(f"/models/{uuid.uuid4()}"), 404, "NotFound")
        base = api.get("/models/base").json()["values"]
        assert len(base) == 1
        assert base[0]["locale"] == "en-US"
        base_id = base[0]["self"].split("?", maxsplit=1)[0].rsplit("/", 1)[1]
        assert api.get(f"/models/base/{base_id}").status_code == 200
        # A job can name the custom model, and the entity echoes it.
        body = create_body(["https://127.0.0.1:9/nowhere.wav"])
        body["model"] = {"self": model_url}
        assert submit(api, body)["model"]["self"] == model_url
        body["locale"] = "de-DE"
        _error(
            api.post("/transcriptions:submit", json=body), 400, "InvalidRequest", "ModelMismatch"
        )
