"""Jobs end to end with the scripted engine: results, failures, life cycle, time-to-live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Azurite, SpeechEmulator, wait_for
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.result_schema import TranscriptionReport, TranscriptionResult
from tests.emulator.speech import (
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

LEFT = [["Thank you for calling.", "How can I help?"], ["My card was declined."]]


def _result_and_report(
    api: httpx.Client, entity: dict
) -> tuple[list[TranscriptionResult], TranscriptionReport]:
    listed = files(api, entity)
    results = [
        TranscriptionResult.model_validate(download(f))
        for f in listed
        if f["kind"] == "Transcription"
    ]
    (report_file,) = [f for f in listed if f["kind"] == "TranscriptionReport"]
    return results, TranscriptionReport.model_validate(download(report_file))


@pytest.mark.parametrize("fmt", ["WAV", "MP3"])
def test_stereo_result(scripted_emulator: SpeechEmulator, azurite: Azurite, fmt: str) -> None:
    left = bursts([(0.5, 1.5), (2.2, 3.0)], 5.0)
    right = bursts([(3.5, 4.5)], 5.0, freq=330.0)
    url = upload(azurite, encode([left, right], fmt), name=f"call.{fmt.lower()}", transcript=LEFT)
    with client(scripted_emulator) as api:
        entity = wait_done(
            api,
            submit(
                api,
                create_body(
                    [url],
                    wordLevelTimestampsEnabled=True,
                    displayFormWordLevelTimestampsEnabled=True,
                ),
            ),
        )
        assert entity["status"] == "Succeeded"
        (result,), report = _result_and_report(api, entity)
    assert report.successful_transcriptions_count == 1
    assert report.details[0].status == "Succeeded"
    assert result.source == url.split("?")[0]
    assert "sig=" not in result.model_dump_json()
    assert result.duration_milliseconds == pytest.approx(5000, abs=60)
    assert result.channels() == [0, 1]
    phrases = result.recognized_phrases
    assert [(p.channel, p.n_best[0].lexical) for p in phrases] == [
        (0, "thank you for calling"),
        (0, "how can i help"),
        (1, "my card was declined"),
    ]
    assert phrases[0].offset_in_ticks == pytest.approx(5_000_000, abs=400_000)
    assert phrases[2].offset == "PT3.5S" or phrases[2].offset_in_ticks == pytest.approx(
        35_000_000, abs=400_000
    )
    best = phrases[0].n_best[0]
    assert best.display == "Thank you for calling."
    assert best.words is not None
    assert [w.word for w in best.words][:2] == ["thank", "you"]
    assert best.display_words is not None
    assert best.display_words[-1].display_text == "calling."
    assert all("speaker" not in p.model_dump(by_alias=True, exclude_none=True) for p in phrases)
    combined = {c.channel: c.display for c in result.combined_recognized_phrases}
    assert combined == {0: "Thank you for calling. How can I help.", 1: "My card was declined."}


def test_mono_with_diarization_and_placeholder(
    scripted_emulator: SpeechEmulator, azurite: Azurite
) -> None:
    url = upload(azurite, encode([bursts([(0.3, 1.0), (1.6, 2.2)], 3.0)], "MP3"), name="mono.mp3")
    with client(scripted_emulator) as api:
        entity = wait_done(
            api,
            submit(api, create_body([url], diarization={"enabled": True, "maxSpeakers": 2})),
        )
        assert entity["status"] == "Succeeded"
        assert entity["properties"]["diarization"] == {"enabled": True, "maxSpeakers": 2}
        (result,), _ = _result_and_report(api, entity)
    assert result.channels() == [0]  # default channels [0, 1] on mono: channel 0 only
    assert [p.speaker for p in result.recognized_phrases] == [1, 2]
    assert result.recognized_phrases[0].n_best[0].lexical == "this is a scripted placeholder phrase"
    assert result.recognized_phrases[0].n_best[0].words is None


def test_channel_selection(scripted_emulator: SpeechEmulator, azurite: Azurite) -> None:
    left, right = bursts([(0.2, 0.8)], 1.0), bursts([(0.3, 0.9)], 1.0)
    url = upload(azurite, encode([left, right]), transcript=[["left side"], ["right side"]])
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, create_body([url], channels=[1])))
        (result,), _ = _result_and_report(api, entity)
    assert result.channels() == [1]
    assert result.recognized_phrases[0].n_best[0].lexical == "right side"


def _failed(api: httpx.Client, body: dict) -> tuple[dict, TranscriptionReport]:
    entity = wait_done(api, submit(api, body))
    assert entity["status"] == "Failed"
    _, report = _result_and_report(api, entity)
    return entity, report


def test_input_failures(scripted_emulator: SpeechEmulator, azurite: Azurite) -> None:
    stereo = encode([bursts([(0.2, 0.8)], 1.0)] * 2)
    expired = upload(azurite, stereo, expiry=timedelta(seconds=-1))
    missing = upload(azurite, stereo).replace(".wav?", "-missing.wav?")
    garbage = upload(azurite, b"this is not audio at all" * 100, name="notes.wav")
    mono = upload(azurite, encode([bursts([(0.2, 0.8)], 1.0)]))
    cases = [
        (create_body([expired]), "InvalidRecordingsUri"),
        (create_body([missing]), "InvalidRecordingsUri"),
        (create_body(["http://127.0.0.1:9/unreachable.wav"]), "InvalidRecordingsUri"),
        (create_body([garbage]), "InvalidAudioFormat"),
        (create_body([mono], channels=[1]), "InvalidChannels"),
        (
            create_body([upload(azurite, stereo)], diarization={"enabled": True}),
            "BadChannelConfiguration",
        ),
    ]
    with client(scripted_emulator) as api:
        for body, code in cases:
            entity, report = _failed(api, body)
            assert entity["properties"]["error"]["code"] == code
            assert "sig=" not in entity["properties"]["error"]["message"]
            assert report.failed_transcriptions_count == 1
            assert report.details[0].error_kind == code
            assert report.details[0].error_message


def test_partial_failure_still_succeeds(
    scripted_emulator: SpeechEmulator, azurite: Azurite
) -> None:
    good = upload(azurite, encode([bursts([(0.2, 0.8)], 1.0)]))
    bad = upload(azurite, b"garbage" * 100)
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, create_body([good, bad])))
        assert entity["status"] == "Succeeded"
        results, report = _result_and_report(api, entity)
        names = sorted(f["name"] for f in files(api, entity))
    assert len(results) == 1
    assert [d.status for d in report.details] == ["Succeeded", "Failed"]
    assert names == ["contenturl_0.json", "report.json"]


def test_container_input(scripted_emulator: SpeechEmulator, azurite: Azurite) -> None:

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"ct-{uuid.uuid4().hex[:10]}"
    container = service.create_container(name)
    for i in range(2):
        container.upload_blob(f"{i}.wav", encode([bursts([(0.1, 0.6)], 1.0)]))
    sas = generate_container_sas(
        DEV_ACCOUNT,
        name,
        account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    body = create_body([])
    del body["contentUrls"]
    body["contentContainerUrl"] = f"{azurite.blob_endpoint}/{name}?{sas}"
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, body))
        assert entity["status"] == "Succeeded"
        results, report = _result_and_report(api, entity)
    assert report.successful_transcriptions_count == 2
    assert sorted(r.source.rsplit("/", 1)[1] for r in results) == ["0.wav", "1.wav"]


def test_life_cycle_timing_and_ttl(speech_emulator_factory, azurite: Azurite) -> None:
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--start-delay", "30", "--processing-time", "600"
    )
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api, admin(emulator) as adm:
        entity = submit(api, create_body([url]))
        path = f"/transcriptions/{job_id(entity)}"
        assert api.get(path).json()["status"] == "NotStarted"
        adm.post("/clock", json={"advance_seconds": 31})
        wait_for(lambda: api.get(path).json()["status"] == "Running", timeout=10, what="Running")
        adm.post("/clock", json={"advance_seconds": 601})
        done = wait_done(api, entity)
        assert done["status"] == "Succeeded"
        timeline = adm.get("/stats").json()["jobs"][job_id(entity)]
        assert timeline["displayName"] == entity["displayName"]
        assert timeline["created"] < timeline["started"] < timeline["finished"]
        assert timeline["finished"].endswith("Z")
        assert "." in timeline["finished"]
        # Time-to-live counts from completion: 47 h later it is there, after 48 h it is gone.
        adm.post("/clock", json={"advance_seconds": 47 * 3600})
        assert api.get(path).status_code == 200
        adm.post("/clock", json={"advance_seconds": 3600 + 1})
        assert api.get(path).status_code == 404
        stats = adm.get("/stats").json()
        assert stats["transcriptions"]["events"]["expired"] == 1
        assert stats["transcriptions"]["live"] == 0
        assert job_id(entity) in stats["jobs"]  # timelines outlive the job


def test_processing_factor_scales_with_audio(speech_emulator_factory, azurite: Azurite) -> None:
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--start-delay", "0", "--processing-factor", "100"
    )
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 2.0)]))  # 2 s audio -> 200 s busy
    with client(emulator) as api, admin(emulator) as adm:
        entity = submit(api, create_body([url]))
        path = f"/transcriptions/{job_id(entity)}"
        wait_for(lambda: api.get(path).json()["status"] == "Running", timeout=10, what="Running")
        adm.post("/clock", json={"advance_seconds": 150})
        assert api.get(path).json()["status"] == "Running"
        adm.post("/clock", json={"advance_seconds": 60})
        assert wait_done(api, entity)["status"] == "Succeeded"


def test_destination_container(scripted_emulator: SpeechEmulator, azurite: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"dest-{uuid.uuid4().hex[:10]}"
    service.create_container(name)
    sas = generate_container_sas(
        DEV_ACCOUNT,
        name,
        account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    body = create_body([url], destinationContainerUrl=f"{azurite.blob_endpoint}/{name}?{sas}")
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, body))
        assert entity["status"] == "Succeeded"
        assert "?" not in entity["properties"]["destinationContainerUrl"]
        # The API returns these files' URLs without a SAS: reading them takes a credential.
        content_urls = sorted(f["links"]["contentUrl"] for f in files(api, entity))
        assert content_urls == [
            f"{azurite.blob_endpoint}/{name}/{job_id(entity)}/{n}"
            for n in ("contenturl_0.json", "report.json")
        ]
        assert httpx.get(content_urls[0]).status_code in (403, 404)
        # Deleting the transcription leaves the destination container alone.
        assert api.delete(f"/transcriptions/{job_id(entity)}").status_code == 204
    blobs = sorted(b.name for b in service.get_container_client(name).list_blobs())
    assert blobs == [f"{job_id(entity)}/contenturl_0.json", f"{job_id(entity)}/report.json"]


def test_unlistable_container_fails_the_job(
    scripted_emulator: SpeechEmulator, azurite: Azurite
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"nolist-{uuid.uuid4().hex[:10]}"
    service.create_container(name)
    sas = generate_container_sas(
        DEV_ACCOUNT,
        name,
        account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True),  # no list
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    body = create_body([])
    del body["contentUrls"]
    body["contentContainerUrl"] = f"{azurite.blob_endpoint}/{name}?{sas}"
    with client(scripted_emulator) as api:
        entity = wait_done(api, submit(api, body))
    assert entity["status"] == "Failed"
    assert entity["properties"]["error"]["code"] == "InaccessibleCustomerStorage"
    assert "sig=" not in entity["properties"]["error"]["message"]
