"""Both engines through the whole emulator over HTTP, on the committed sample calls.

The scripted engine is covered with synthetic audio in test_jobs.py; here the `sphinx`
engine transcribes the espeak-ng sample calls (stereo WAV and MP3, mono WAV) with the
custom model built from samples/phrases.txt. (The base model is exercised at engine level
in test_sphinx_engine.py: over HTTP it costs ~30 s of CPU for one stereo call.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.services import PROJECT_ROOT, Azurite, SpeechEmulator, start_speech_emulator
from tests.emulator.result_schema import TranscriptionResult
from tests.emulator.speech import client, create_body, download, files, submit, upload, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLES = PROJECT_ROOT / "samples"
EXPECTED: dict[str, Any] = json.loads((SAMPLES / "expected.json").read_text())["files"]


@pytest.fixture(scope="module")
def sphinx_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    base = tmp_path_factory.mktemp("sphinx")
    emulator = start_speech_emulator(
        "--engine",
        "sphinx",
        "--instant",
        "--workers",
        "2",
        "--custom-model",
        f"Samples={SAMPLES / 'phrases.txt'}",
        log_path=base / "emulator.log",
    )
    try:
        yield emulator
    finally:
        emulator.stop()


SAMPLE_NAMES = ["call_stereo.wav", "call_stereo.mp3", "call_mono.wav"]


@pytest.fixture(scope="module")
def results(sphinx_emulator: SpeechEmulator, azurite: Azurite) -> dict[str, TranscriptionResult]:
    """Sample name -> result with the custom model; all jobs submitted first so they overlap."""
    model = sphinx_emulator.custom_model_url("Samples")
    with client(sphinx_emulator) as api:
        jobs = []
        for name in SAMPLE_NAMES:
            url = upload(azurite, (SAMPLES / name).read_bytes(), name=name)
            body = create_body([url], wordLevelTimestampsEnabled=True)
            body["model"] = {"self": model}
            jobs.append((name, submit(api, body)))
        out: dict[str, TranscriptionResult] = {}
        for name, job in jobs:
            done = wait_done(api, job, timeout=240)
            assert done["status"] == "Succeeded", done["properties"].get("error")
            (result_file,) = [f for f in files(api, done) if f["kind"] == "Transcription"]
            out[name] = TranscriptionResult.model_validate(download(result_file))
    return out


def _channel_words(result: TranscriptionResult, channel: int) -> list[str]:
    return [
        w.word
        for p in result.recognized_phrases
        if p.channel == channel
        for w in (p.n_best[0].words or [])
    ]


def _accuracy(reference: list[str], hypothesis: list[str]) -> float:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return 1 - previous[-1] / len(reference)


def test_sphinx_custom_model_puts_the_right_words_on_the_right_channel(
    results: dict[str, TranscriptionResult],
) -> None:
    for name in SAMPLE_NAMES:
        info = EXPECTED[name]
        result = results[name]
        assert Path(result.source).name == name
        assert result.channels() == list(range(info["channels"]))
        assert result.duration_milliseconds == pytest.approx(info["duration_s"] * 1000, rel=0.05)
        for channel, sentences in enumerate(info["sentences"]):
            reference = " ".join(sentences).split()
            heard = _channel_words(result, channel)
            assert _accuracy(reference, heard) >= 0.8, (name, channel, heard)
        offsets = [p.offset_in_ticks for p in result.recognized_phrases]
        assert offsets == sorted(offsets)
    stereo = results["call_stereo.wav"]
    assert "refund" in _channel_words(stereo, 0)
    assert "refund" not in _channel_words(stereo, 1)
    assert "charged" in _channel_words(stereo, 1)
    assert "charged" not in _channel_words(stereo, 0)
