"""Decoding and encoding of the Speech batch API shapes (pure, no HTTP)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.speech_models import (
    Transcription,
    TranscriptionFile,
    TranscriptionStatus,
    build_submit_body,
    transcription_id_from_url,
)

JOB_ID = "ba7ea6f5-3065-40b7-b49a-a90f48584683"
SELF = f"https://westus.api.cognitive.microsoft.com/speechtotext/transcriptions/{JOB_ID}?api-version=2024-11-15"


def transcription_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "self": SELF,
        "displayName": "audio-input|call 1.wav|0x8DC",
        "locale": "en-US",
        "createdDateTime": "2024-01-07T11:34:12Z",
        "lastActionDateTime": "2024-01-07T11:36:07.123Z",
        "properties": {"channels": [0, 1], "durationMilliseconds": 42000},
        "status": "Succeeded",
    }
    data.update(overrides)
    return data


class TestTranscriptionStatus:
    @pytest.mark.parametrize(
        ("status", "terminal"),
        [("NotStarted", False), ("Running", False), ("Succeeded", True), ("Failed", True)],
    )
    def test_terminal_states(self, status: str, terminal: bool) -> None:
        assert TranscriptionStatus(status).is_terminal is terminal

    def test_is_a_string(self) -> None:
        assert str(TranscriptionStatus.RUNNING) == "Running"
        assert f"{TranscriptionStatus.FAILED}" == "Failed"


class TestTranscriptionIdFromUrl:
    @pytest.mark.parametrize(
        "url",
        [
            SELF,
            f"https://x/speechtotext/transcriptions/{JOB_ID}",
            f"https://x/speechtotext/transcriptions/{JOB_ID}/",
            f"http://127.0.0.1:5050/speechtotext/transcriptions/{JOB_ID}#frag",
        ],
    )
    def test_last_path_segment(self, url: str) -> None:
        assert transcription_id_from_url(url) == JOB_ID

    @pytest.mark.parametrize("url", ["", "https://x/", "https://x/speechtotext/transcriptions"])
    def test_no_id_is_an_error(self, url: str) -> None:
        with pytest.raises(ValueError, match="transcription"):
            transcription_id_from_url(url)


class TestTranscriptionFromJson:
    def test_succeeded_job(self) -> None:
        t = Transcription.from_json(transcription_json())
        assert t.id == JOB_ID
        assert t.self_url == SELF.split("?", maxsplit=1)[0]  # stored without its query
        assert t.display_name == "audio-input|call 1.wav|0x8DC"
        assert t.status is TranscriptionStatus.SUCCEEDED
        assert t.created == datetime(2024, 1, 7, 11, 34, 12, tzinfo=UTC)
        assert t.last_action == datetime(2024, 1, 7, 11, 36, 7, 123000, tzinfo=UTC)
        assert t.duration_ms == 42000
        assert t.error_code is None
        assert t.error_message is None
        assert t.raw["locale"] == "en-US"

    def test_failed_job_keeps_the_service_error(self) -> None:
        data = transcription_json(
            status="Failed",
            properties={"error": {"code": "InvalidAudioFormat", "message": "Bad audio."}},
        )
        t = Transcription.from_json(data)
        assert t.status is TranscriptionStatus.FAILED
        assert (t.error_code, t.error_message) == ("InvalidAudioFormat", "Bad audio.")
        assert t.duration_ms is None

    def test_a_service_error_quoting_the_input_url_loses_its_sas(self) -> None:
        url = "https://acct.blob.core.windows.net/in/a.wav"
        message = f"Cannot read {url}?sv=2024&sp=r&sig=S3CRET%2Bsig: 403 (AuthorizationFailure)."
        data = transcription_json(
            status="Failed",
            properties={"error": {"code": "InvalidRecordingsUri", "message": message}},
        )
        t = Transcription.from_json(data)
        assert t.error_message is not None
        assert t.error_message.startswith(f"Cannot read {url}")
        assert "S3CRET" not in t.error_message
        assert "sig=" not in t.error_message
        assert t.error_message.endswith("403 (AuthorizationFailure).")

    def test_tolerates_missing_and_odd_optional_fields(self) -> None:
        data = {
            "self": SELF,
            "status": "NotStarted",
            "createdDateTime": "garbage",
            "properties": None,
            "displayName": 5,
            "extra": {"x": 1},
        }
        t = Transcription.from_json(data)
        assert t.status is TranscriptionStatus.NOT_STARTED
        assert t.created is None
        assert t.display_name == ""
        assert t.duration_ms is None

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            ([], "JSON object"),
            ("text", "JSON object"),
            ({"status": "Running"}, "'self'"),
            ({"self": SELF}, "status None"),
            ({"self": SELF, "status": "Cancelled"}, "status 'Cancelled'"),
        ],
    )
    def test_garbage_gives_a_clear_error(self, data: Any, fragment: str) -> None:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            Transcription.from_json(data)

    def test_equality_ignores_raw(self) -> None:
        a = Transcription.from_json(transcription_json())
        b = Transcription.from_json({**transcription_json(), "extra": 1})
        assert a == b


class TestTranscriptionFile:
    def test_result_file(self) -> None:
        sas = "https://acct.blob.core.windows.net/artifacts/a.json?sv=2017&sig=SECRETSIG"
        f = TranscriptionFile.from_json(
            {
                "self": f"https://x/speechtotext/transcriptions/{JOB_ID}/files/f1?api-version=3.2",
                "name": "a.wav.json",
                "kind": "Transcription",
                "links": {"contentUrl": sas},
                "properties": {"size": 200},
            }
        )
        assert (f.kind, f.name, f.size, f.content_url) == ("Transcription", "a.wav.json", 200, sas)
        assert f.self_url.endswith("/files/f1")
        assert "SECRETSIG" not in repr(f)

    @pytest.mark.parametrize(
        "data",
        [{"kind": "Transcription", "links": {}}, {"links": {"contentUrl": "https://x"}}, None],
    )
    def test_missing_required_fields(self, data: Any) -> None:
        with pytest.raises(ValueError, match=r"contentUrl|kind|JSON object"):
            TranscriptionFile.from_json(data)

    def test_size_is_optional(self) -> None:
        f = TranscriptionFile.from_json(
            {"kind": "TranscriptionReport", "links": {"contentUrl": "https://x/r.json"}}
        )
        assert f.size is None
        assert f.name == ""


BASE_ARGS: dict[str, Any] = {
    "display_name": "job-key",
    "content_url": "https://acct.blob.core.windows.net/audio/a.wav?sv=1&sig=abc",
    "locale": "en-US",
    "channels": [0, 1],
    "time_to_live_hours": 48,
}


class TestBuildSubmitBody:
    def test_minimal_stereo_body(self) -> None:
        assert build_submit_body(**BASE_ARGS) == {
            "displayName": "job-key",
            "locale": "en-US",
            "contentUrls": [BASE_ARGS["content_url"]],
            "properties": {
                "channels": [0, 1],
                "timeToLiveHours": 48,
                "wordLevelTimestampsEnabled": True,
                "displayFormWordLevelTimestampsEnabled": True,
                "punctuationMode": "DictatedAndAutomatic",
                "profanityFilterMode": "Masked",
            },
        }

    def test_all_options(self) -> None:
        body = build_submit_body(
            **{**BASE_ARGS, "channels": (0,)},
            model_url="https://x/speechtotext/models/m1",
            word_timestamps=False,
            punctuation_mode="None",
            profanity_filter_mode="Tags",
            diarization_max_speakers=3,
            language_candidates=("en-US", "de-DE"),
            language_id_mode="Single",
            custom_properties={"source": "test"},
        )
        props = body["properties"]
        assert body["model"] == {"self": "https://x/speechtotext/models/m1"}
        assert body["customProperties"] == {"source": "test"}
        assert props["channels"] == [0]
        assert props["wordLevelTimestampsEnabled"] is False
        assert props["displayFormWordLevelTimestampsEnabled"] is False
        assert props["punctuationMode"] == "None"
        assert props["profanityFilterMode"] == "Tags"
        assert props["diarization"] == {"enabled": True, "maxSpeakers": 3}
        assert props["languageIdentification"] == {
            "candidateLocales": ["en-US", "de-DE"],
            "mode": "Single",
        }

    def test_no_model_key_for_the_base_model(self) -> None:
        assert "model" not in build_submit_body(**BASE_ARGS, model_url="")

    @pytest.mark.parametrize(
        ("overrides", "fragment"),
        [
            ({"diarization_max_speakers": 2}, "mono"),
            ({"channels": [0], "diarization_max_speakers": 1}, "2..35"),
            ({"channels": [0], "diarization_max_speakers": 36}, "2..35"),
            ({"channels": []}, "channels"),
            ({"channels": [0, 0]}, "repeat"),
            ({"channels": [-1]}, "channels"),
            ({"time_to_live_hours": 5}, "6..744"),
            ({"time_to_live_hours": 745}, "6..744"),
            ({"display_name": ""}, "display_name"),
            ({"content_url": ""}, "content_url"),
            ({"locale": ""}, "locale"),
            ({"punctuation_mode": "Loud"}, "punctuation_mode"),
            ({"profanity_filter_mode": "x"}, "profanity_filter_mode"),
            ({"language_candidates": ["en-US"]}, "2..10"),
            ({"language_candidates": ["en-US"] * 11}, "2..10"),
            ({"language_candidates": ["en-US", "de-DE"], "language_id_mode": "x"}, "mode"),
            ({"custom_properties": {str(i): "v" for i in range(11)}}, "10 entries"),
        ],
    )
    def test_invariants(self, overrides: dict[str, Any], fragment: str) -> None:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            build_submit_body(**{**BASE_ARGS, **overrides})


def test_submit_body_carries_the_deployment_tag_as_description() -> None:
    common: dict[str, Any] = {
        "display_name": "tj-1",
        "content_url": "https://a/b.wav?sig=x",
        "locale": "en-US",
        "channels": [0],
        "time_to_live_hours": 48,
    }
    assert build_submit_body(**common, description="tag")["description"] == "tag"
    assert "description" not in build_submit_body(**common)


def test_submit_body_takes_several_recordings_for_one_job() -> None:
    args = {k: v for k, v in BASE_ARGS.items() if k != "content_url"}
    urls = [f"https://acct.blob.core.windows.net/in/{i}.wav?sig=s{i}" for i in range(1000)]
    assert build_submit_body(**args, content_urls=urls)["contentUrls"] == urls
    with pytest.raises(ValueError, match="at most 1000"):
        build_submit_body(**args, content_urls=[*urls, "https://acct/x.wav"])
    with pytest.raises(ValueError, match="same recording twice"):
        # The SAS differs but the recording is the same: results could not be told apart.
        build_submit_body(**args, content_urls=[urls[0], urls[0].replace("sig=s0", "sig=z")])
    with pytest.raises(ValueError, match="not both"):
        build_submit_body(**BASE_ARGS, content_urls=urls[:2])
    with pytest.raises(ValueError, match="must not be empty"):
        build_submit_body(**args)
