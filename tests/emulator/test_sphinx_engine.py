"""The `sphinx` engine on the committed sample calls (no HTTP, no espeak-ng needed).

The samples' script (which sentence, which channel, when) is in samples/expected.json.
Recognition is deterministic, so results are computed once per module and shared.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import soundfile as sf

from speech_emulator.engines.base import CustomModel, Phrase, RecognitionRequest, Word
from speech_emulator.engines.sphinx import (
    SphinxEngine,
    group_phrases,
    lexical_word,
    resample,
    speech_chunks,
    to_decoder_pcm,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EXPECTED: dict[str, Any] = json.loads((SAMPLES / "expected.json").read_text())["files"]
CHANNELS = [(name, ch) for name, info in EXPECTED.items() for ch in range(info["channels"])]
STEREO = [name for name, info in EXPECTED.items() if info["channels"] == 2]

Recognize = Callable[[str, int], list[Phrase]]


def read_channel(name: str, channel: int) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(SAMPLES / name, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio[:, channel]), rate


def request(
    samples: np.ndarray, rate: int, model: CustomModel | None, channel: int = 0
) -> RecognitionRequest:
    return RecognitionRequest(
        samples=samples, sample_rate=rate, channel=channel, locale="en-US", model=model
    )


def words_of(phrases: list[Phrase]) -> list[str]:
    return [w.text for p in phrases for w in p.words]


def word_accuracy(reference: list[str], hypothesis: list[str]) -> float:
    """1 - word error rate (substitutions, deletions, insertions over reference length)."""
    # Levenshtein over words; difflib's matching blocks would ignore insertions.
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return 1 - previous[-1] / len(reference)


@pytest.fixture(scope="module")
def model() -> CustomModel:
    lines = (SAMPLES / "phrases.txt").read_text().splitlines()
    return CustomModel(id="samples-model", name="samples", phrases=tuple(x for x in lines if x))


@pytest.fixture(scope="module")
def engine(model: CustomModel) -> SphinxEngine:
    """In-thread decoding: no worker processes to start (the process pool has its own test)."""
    return SphinxEngine({model.id: model}, processes=0)


@pytest.fixture(scope="module")
def recognized(engine: SphinxEngine, model: CustomModel) -> Recognize:
    """Phrases of (file, channel) with the samples' custom model, computed once."""

    @cache
    def run(name: str, channel: int) -> list[Phrase]:
        samples, rate = read_channel(name, channel)
        return engine.recognize(request(samples, rate, model, channel))

    return run


@pytest.mark.parametrize(("name", "channel"), CHANNELS)
def test_custom_model_recognises_the_channels_sentences(
    recognized: Recognize, name: str, channel: int
) -> None:
    reference = " ".join(EXPECTED[name]["sentences"][channel]).split()
    hypothesis = words_of(recognized(name, channel))
    accuracy = word_accuracy(reference, hypothesis)
    assert accuracy >= 0.9, (accuracy, " ".join(hypothesis))


@pytest.mark.parametrize(("name", "channel"), CHANNELS)
def test_one_phrase_per_turn(recognized: Recognize, name: str, channel: int) -> None:
    """Turns are separated by 0.8 s pauses: each becomes a phrase, at about the turn's time."""
    turns = [t for t in EXPECTED[name]["turns"] if t["channel"] == channel]
    phrases = recognized(name, channel)
    assert len(phrases) == len(turns), [p.lexical for p in phrases]
    for phrase, turn in zip(phrases, turns, strict=True):
        # VAD and word boundaries are approximate; the MP3 adds encoder delay.
        assert phrase.start_s == pytest.approx(turn["start_s"], abs=0.35)
        assert phrase.end_s == pytest.approx(turn["end_s"], abs=0.5)
        assert difflib.SequenceMatcher(a=phrase.lexical, b=turn["text"]).ratio() > 0.8


@pytest.mark.parametrize("name", STEREO)
def test_key_words_land_on_the_right_channel(recognized: Recognize, name: str) -> None:
    sentences = EXPECTED[name]["sentences"]
    heard = [set(words_of(recognized(name, ch))) for ch in (0, 1)]
    for channel in (0, 1):
        other = 1 - channel
        said_on_other = {w for s in sentences[other] for w in s.split()}
        for sentence in sentences[channel]:
            # Key words: the sentence's longer words that the other party never says.
            key = {w for w in sentence.split() if len(w) >= 4} - said_on_other
            assert key, sentence
            assert key <= heard[channel], (sentence, key - heard[channel])
            assert not key & heard[other], (sentence, key & heard[other])


@pytest.mark.parametrize(("name", "channel"), CHANNELS)
def test_word_times_are_ordered_and_inside_the_audio(
    recognized: Recognize, name: str, channel: int
) -> None:
    duration = EXPECTED[name]["duration_s"]
    phrases = recognized(name, channel)
    words = [w for p in phrases for w in p.words]
    assert words
    for word in words:
        assert 0 <= word.start_s < word.end_s <= duration + 0.05
        assert 0 < word.confidence <= 1
        assert word.text == word.text.lower()
        assert word.text.isalpha()
    for before, after in itertools.pairwise(words):
        assert before.end_s <= after.start_s
    for phrase in phrases:
        assert (phrase.start_s, phrase.end_s) == (phrase.words[0].start_s, phrase.words[-1].end_s)
        assert 0 < phrase.confidence <= 1
        assert phrase.speaker is None


def test_base_model_runs_on_the_same_audio(engine: SphinxEngine) -> None:
    """The stock model cannot follow espeak-ng voices well, but must return sane phrases."""
    samples, rate = read_channel("call_stereo.wav", 1)
    phrases = engine.recognize(request(samples, rate, None, 1))
    assert isinstance(phrases, list)
    assert phrases  # there is speech, so it hears *something*
    for phrase in phrases:
        assert phrase.words
        assert 0 <= phrase.start_s < phrase.end_s <= len(samples) / rate + 0.05


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_silence_gives_no_phrases(engine: SphinxEngine, model: CustomModel, rate: int) -> None:
    silence = np.zeros(3 * rate, dtype=np.float32)
    assert engine.recognize(request(silence, rate, model)) == []
    assert engine.recognize(request(np.zeros(0, dtype=np.float32), rate, model)) == []


def test_unusable_sample_arrays_are_rejected_or_sanitised(
    engine: SphinxEngine, model: CustomModel
) -> None:
    stereo = np.zeros((16000, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="one channel"):
        engine.recognize(request(stereo, 16000, model))
    with pytest.raises(ValueError, match="sample rate"):
        engine.recognize(request(np.zeros(100, dtype=np.float32), 0, model))
    broken = np.full(16000, np.nan, dtype=np.float32)
    broken[::3] = np.inf
    pcm = to_decoder_pcm(broken, 16000)
    assert pcm.dtype == np.int16
    assert np.abs(pcm.astype(np.int32)).max() <= 32767


def test_other_sample_rates_give_the_same_words(
    engine: SphinxEngine, model: CustomModel, recognized: Recognize
) -> None:
    samples, rate = read_channel("call_mono.wav", 0)
    upsampled = resample(samples, rate, 48000)
    phrases = engine.recognize(request(upsampled, 48000, model))
    expected = words_of(recognized("call_mono.wav", 0))
    assert word_accuracy(expected, words_of(phrases)) >= 0.9
    assert phrases[-1].end_s == pytest.approx(recognized("call_mono.wav", 0)[-1].end_s, abs=0.1)


def test_concurrent_calls_give_the_same_result_as_sequential(
    engine: SphinxEngine, model: CustomModel, recognized: Recognize
) -> None:
    """Several threads at once each get their own decoder; results are history-independent."""
    jobs = [("call_stereo.mp3", 0), ("call_stereo.mp3", 1), ("call_mono.wav", 0)]

    def run(job: tuple[str, int]) -> list[Phrase]:
        samples, rate = read_channel(*job)
        return engine.recognize(request(samples, rate, model, job[1]))

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, jobs))
    assert results == [recognized(*job) for job in jobs]


def test_worker_processes_give_the_same_results_and_stop_on_close(
    model: CustomModel, recognized: Recognize
) -> None:
    """pocketsphinx holds the GIL while decoding, so by default the engine decodes in
    worker processes: same results as in-thread, and no process left after close()."""

    def workers_now() -> set[int]:  # spawned workers; not multiprocessing's resource tracker
        pids = set()
        for child in psutil.Process().children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    pids.add(child.pid)
            except psutil.Error:  # exited meanwhile
                continue
        return pids

    before = workers_now()
    engine = SphinxEngine({model.id: model}, processes=2)
    jobs = [("call_stereo.wav", 0), ("call_stereo.wav", 1), ("call_mono.wav", 0)]
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(
                pool.map(lambda job: engine.recognize(request(*read_channel(*job), model)), jobs)
            )
        workers = workers_now() - before
        assert 1 <= len(workers) <= 2
        assert results == [recognized(*job) for job in jobs]
    finally:
        engine.close()
    assert not workers & workers_now()


KILLED_PARENT = """
import os, sys, psutil
from speech_emulator.engines.sphinx import SphinxEngine
if __name__ == "__main__":
    engine = SphinxEngine({}, processes=1)
    engine.warm_up()
    print(" ".join(str(c.pid) for c in psutil.Process().children(recursive=True)), flush=True)
    sys.stdin.read()  # until the test kills us
"""


def test_worker_processes_exit_when_the_emulator_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=SAMPLES.parent,
        env={**os.environ, "PYTHONPATH": str(SAMPLES.parent)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert children  # the worker (and multiprocessing's resource tracker)
    finally:
        parent.kill()  # SIGKILL: no chance to shut the pool down
        parent.wait()
    deadline = time.monotonic() + 15
    while any(psutil.pid_exists(pid) and _alive(pid) for pid in children):
        assert time.monotonic() < deadline, "worker processes outlived the killed parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_long_recording_is_decoded_in_chunks(engine: SphinxEngine, model: CustomModel) -> None:
    samples, rate = read_channel("call_mono.wav", 0)
    long = np.tile(samples, 4)  # ~40 s: three turns, four times
    pcm = to_decoder_pcm(long, rate)
    chunks = list(speech_chunks(pcm))
    assert len(chunks) == 12
    phrases = engine.recognize(request(long, rate, model))
    assert len(phrases) == 12
    assert phrases[-1].end_s <= len(long) / rate


def test_speech_without_pauses_is_cut_into_bounded_chunks() -> None:
    rate = 16000
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, 70 * rate).astype(np.float32)
    chunks = list(speech_chunks(to_decoder_pcm(noise, rate)))
    assert len(chunks) >= 3
    assert all(len(pcm) / 2 / rate <= 30.0 for _, pcm in chunks)
    starts = [start for start, _ in chunks]
    assert starts == sorted(starts)
    assert sum(len(pcm) for _, pcm in chunks) / 2 / rate >= 65


def test_words_outside_the_dictionary_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = CustomModel(id="oov", name="oov", phrases=("Welcome to Zyxqwar, Bank!", "qqzz"))
    with caplog.at_level(logging.WARNING):
        engine = SphinxEngine({model.id: model})
    assert "zyxqwar" in caplog.text
    assert "qqzz" in caplog.text
    silence = np.zeros(16000, dtype=np.float32)
    assert engine.recognize(request(silence, 16000, model)) == []


def test_a_model_without_any_known_word_is_rejected() -> None:
    model = CustomModel(id="bad", name="gibberish", phrases=("qqzz xxkv", "1234"))
    with pytest.raises(ValueError, match=r"gibberish.*no phrase with a word"):
        SphinxEngine({model.id: model})


def test_phrases_split_on_pauses_of_at_least_the_gap() -> None:
    def word(text: str, start: float, end: float) -> Word:
        return Word(text=text, start_s=start, end_s=end, confidence=0.5)

    words = [word("a", 0.0, 0.3), word("b", 0.6, 0.9), word("c", 1.4, 1.6), word("d", 1.7, 2.0)]
    phrases = group_phrases(words, 0.5)
    assert [p.lexical for p in phrases] == ["a b", "c d"]
    assert (phrases[1].start_s, phrases[1].end_s, phrases[1].confidence) == (1.4, 2.0, 0.5)
    assert group_phrases([], 0.5) == []


def test_run_on_speech_is_cut_into_bounded_phrases() -> None:
    # 60 s of words 0.02 s apart (no pause at all), 1 s pause, 60 s with 0.2 s pauses.
    no_pauses = [Word("w", i * 0.3, i * 0.3 + 0.28, 0.9) for i in range(200)]
    short_pauses = [Word("w", 61 + i * 0.5, 61 + i * 0.5 + 0.3, 0.9) for i in range(120)]
    phrases = group_phrases(no_pauses + short_pauses, 0.5)
    assert sum(len(p.words) for p in phrases) == 320
    assert all(p.end_s - p.start_s <= 20.0 for p in phrases)
    with_pauses = [p for p in phrases if p.start_s >= 60]
    assert [round(p.end_s - p.start_s, 1) for p in with_pauses] == [9.8] * 6


@pytest.mark.parametrize(
    ("token", "word"),
    [
        ("hello", "hello"),
        ("read(2)", "read"),
        ("<s>", None),
        ("</s>", None),
        ("<sil>", None),
        ("[NOISE]", None),
        ("++UH++", None),
        ("", None),
    ],
)
def test_segment_tokens_to_words(token: str, word: str | None) -> None:
    assert lexical_word(token) == word


def test_resample_keeps_frequency_and_duration() -> None:
    rate = 44100
    tone = np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)
    out = resample(tone, rate, 16000)
    assert out.dtype == np.float32
    assert out.shape == (16000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 0.01
    # A tone above the new Nyquist frequency must not fold back into the band.
    high = np.sin(2 * np.pi * 12000 * np.arange(rate) / rate).astype(np.float32)
    assert np.abs(resample(high, rate, 16000)[200:-200]).max() < 0.05


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_freshly_synthesised_speech_is_recognised(
    engine: SphinxEngine, model: CustomModel, tmp_path: Path
) -> None:
    """Regenerate one sentence with espeak-ng (22.05 kHz, no sox) and recognise it."""
    sentence = EXPECTED["call_stereo.wav"]["sentences"][0][0]
    wav = tmp_path / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-w", str(wav), sentence], check=True)
    samples, rate = sf.read(wav, dtype="float32")
    assert rate != 16000  # exercises resampling from espeak-ng's native rate
    phrases = engine.recognize(request(samples, rate, model))
    assert word_accuracy(sentence.split(), words_of(phrases)) >= 0.9
