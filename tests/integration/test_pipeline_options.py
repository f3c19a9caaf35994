"""Submission options from settings reach the service; output formats and labels apply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.services import SpeechEmulator, start_speech_emulator
from tests.integration.harness import Pipeline, mono_call, stereo_call

pytestmark = pytest.mark.integration

PIPELINE_EMULATOR = "model_emulator"
PIPELINE_ENV = {
    "DIARIZATION_ENABLED": "true",
    "DIARIZATION_MAX_SPEAKERS": "3",
    "LANGUAGE_CANDIDATES": "en-US,de-DE",
    "LANGUAGE_ID_MODE": "Single",
    "PUNCTUATION_MODE": "Dictated",
    "PROFANITY_FILTER_MODE": "Removed",
    "TIME_TO_LIVE_HOURS": "12",
    "OUTPUT_FORMATS": "channels,txt",
    "CHANNEL_LABELS": "Rep,Caller",
}


@pytest.fixture(scope="module")
def model_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    """An emulator serving a custom model (its URL goes into SPEECH_MODEL)."""
    base = Path(tmp_path_factory.mktemp("model-emulator"))
    phrases = base / "phrases.txt"
    phrases.write_text("my card is blocked\nthank you for calling\n", encoding="utf-8")
    emulator = start_speech_emulator(
        "--engine",
        "scripted",
        "--instant",
        "--custom-model",
        f"callcenter={phrases}",
        log_path=base / "emulator.log",
    )
    PIPELINE_ENV["SPEECH_MODEL"] = emulator.custom_model_url("callcenter")
    try:
        yield emulator
    finally:
        emulator.stop()


def _transcription(pipeline: Pipeline, name: str) -> dict:
    row = pipeline.record_for(name)
    response = pipeline.api.get(f"/transcriptions/{row['TranscriptionId']}")
    response.raise_for_status()
    return response.json()


def test_mono_gets_diarization_language_id_and_the_custom_model(pipeline: Pipeline) -> None:
    name = "options/mono.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["thank you for calling"]]))
    entity = _transcription(pipeline, name)
    props = entity["properties"]
    assert props["channels"] == [0]
    assert props["diarization"]["enabled"] is True
    assert props["diarization"]["maxSpeakers"] == 3
    assert props["languageIdentification"]["candidateLocales"] == ["en-US", "de-DE"]
    assert props["languageIdentification"]["mode"] == "Single"
    assert props["punctuationMode"] == "Dictated"
    assert props["profanityFilterMode"] == "Removed"
    assert props["timeToLiveHours"] == 12
    assert props["wordLevelTimestampsEnabled"] is True
    assert entity["model"]["self"].split("?")[0] == PIPELINE_ENV["SPEECH_MODEL"].split("?")[0]
    assert entity["displayName"] == pipeline.record_for(name)["RowKey"]


def test_stereo_never_asks_for_diarization(pipeline: Pipeline) -> None:
    name = "options/stereo.wav"
    script = [["thank you for calling"], ["my card is blocked"]]
    pipeline.submit(pipeline.upload(name, stereo_call(), script))
    props = _transcription(pipeline, name)["properties"]
    assert props["channels"] == [0, 1]
    assert "diarization" not in props or not props["diarization"].get("enabled")
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    pipeline.drain()
    outputs = [o for o in pipeline.outputs() if o.startswith(f"{name}/")]
    # OUTPUT_FORMATS=channels,txt: no raw result.json, no json/vtt/srt.
    assert sorted(outputs) == [
        f"{name}/{p}" for p in ("channel_0.json", "channel_1.json", "transcript.txt")
    ]
    text = pipeline.output(f"{name}/transcript.txt").decode()
    assert "Rep:" in text
    assert "Caller:" in text
    assert json.loads(pipeline.output(f"{name}/channel_1.json"))["recognizedPhrases"]
