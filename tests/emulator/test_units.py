"""Unit tests of the emulator's pure parts: formats, engine, result builder, parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.rate_window import Rate
from speech_emulator.audio import UndecodableAudioError, decode
from speech_emulator.capacity import FileSlots
from speech_emulator.config import Behaviour
from speech_emulator.engines.base import Phrase, RecognitionRequest, Word
from speech_emulator.engines.scripted import PLACEHOLDER, ScriptedEngine, align, detect_segments
from speech_emulator.errors import ApiError
from speech_emulator.faults import RateLimiter
from speech_emulator.fetch import parse_script, strip_query
from speech_emulator.listing import parse_filter
from speech_emulator.results import (
    InputOutcome,
    ResultOptions,
    build_report,
    build_result,
    display_form,
)
from speech_emulator.speech_models import custom_model_id, load_custom_model
from speech_emulator.timefmt import iso_duration, iso_timestamp_ms, to_ticks
from speech_emulator.tokens import ContentSigner, TokenError
from speech_emulator.validation import parse_create
from tests.emulator.audio_fixtures import RATE, bursts, encode
from tests.emulator.result_schema import TranscriptionReport, TranscriptionResult

NOW = datetime(2025, 5, 24, 13, 37, 5, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (0.76, "PT0.76S"),
        (42, "PT42S"),
        (62.5, "PT1M2.5S"),
        (3600, "PT1H"),
        (3723.0000001, "PT1H2M3.0000001S"),
    ],
)
def test_iso_duration(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text


def test_ticks_and_timestamps() -> None:
    assert to_ticks(0.76) == 7_600_000
    assert iso_timestamp_ms(NOW) == "2025-05-24T13:37:05.123Z"


def test_energy_detector_finds_bursts_and_merges_short_gaps() -> None:
    signal = bursts([(0.5, 1.0), (1.1, 1.5), (2.5, 3.0)], 4.0)  # 0.1 s gap merges
    segments = detect_segments(signal, RATE)
    assert len(segments) == 2
    assert segments[0][0] == pytest.approx(0.5, abs=0.03)
    assert segments[0][1] == pytest.approx(1.5, abs=0.03)
    assert segments[1][0] == pytest.approx(2.5, abs=0.03)


def test_energy_detector_on_silence_is_empty() -> None:
    assert detect_segments(np.zeros(RATE, dtype=np.float32), RATE) == []


def test_align_more_segments_than_texts_joins_segments() -> None:
    out = align([(0, 1), (2, 3), (4, 5)], ["a b", "c"])
    assert [(s, e, t) for s, e, t in out] == [(0, 3, "a b"), (4, 5, "c")]


def test_align_more_texts_than_segments_splits_by_word_count() -> None:
    out = align([(0.0, 3.0)], ["one", "two words"])
    assert out == [(0.0, 1.0, "one"), (1.0, 3.0, "two words")]


def test_scripted_engine_uses_script_and_spreads_words() -> None:
    request = RecognitionRequest(
        samples=bursts([(1.0, 2.0)], 3.0),
        sample_rate=RATE,
        channel=0,
        locale="en-US",
        script=["Hello, World!"],
    )
    (phrase,) = ScriptedEngine().recognize(request)
    assert phrase.lexical == "hello world"
    assert phrase.words[0].start_s == pytest.approx(1.0, abs=0.03)
    assert phrase.words[1].start_s == pytest.approx(1.5, abs=0.03)
    assert phrase.speaker is None


def test_scripted_engine_placeholder_and_diarization() -> None:
    request = RecognitionRequest(
        samples=bursts([(0.2, 0.8), (1.5, 2.0)], 2.5),
        sample_rate=RATE,
        channel=0,
        locale="en-US",
        diarization_max_speakers=3,
    )
    phrases = ScriptedEngine().recognize(request)
    assert [p.lexical for p in phrases] == [PLACEHOLDER, PLACEHOLDER]
    assert [p.speaker for p in phrases] == [1, 2]


def _phrase(start: float, words: list[str]) -> Phrase:
    timed = tuple(Word(w, start + i * 0.5, start + (i + 1) * 0.5, 0.9) for i, w in enumerate(words))
    return Phrase(start, start + 0.5 * len(words), timed, 0.9)


def test_build_result_orders_phrases_and_validates_against_schema() -> None:
    result = build_result(
        "https://x/blob.wav",
        NOW,
        2.58,
        {0: [_phrase(1.0, ["hello", "damn", "world"])], 1: [_phrase(0.5, ["hi"])]},
        ResultOptions(word_level_timestamps=True, display_word_timestamps=True, diarization=True),
    )
    parsed = TranscriptionResult.model_validate(result)
    assert result["duration"] == "PT2.58S"
    assert result["durationInTicks"] == 25_800_000
    assert [p.channel for p in parsed.recognized_phrases] == [1, 0]
    best = parsed.recognized_phrases[1].n_best[0]
    assert best.lexical == "hello damn world"
    assert best.masked_itn == "hello **** world"
    assert best.display == "Hello **** world."
    assert best.words is not None
    assert len(best.words) == 3
    assert best.display_words is not None
    assert best.display_words[-1].display_text == "world."
    assert parsed.recognized_phrases[0].speaker == 1
    assert [c.display for c in parsed.combined_recognized_phrases] == ["Hello **** world.", "Hi."]


def test_build_result_without_options_has_no_words_or_speaker() -> None:
    result = build_result("s", NOW, 1.0, {0: [_phrase(0.0, ["hi"])]}, ResultOptions())
    phrase = result["recognizedPhrases"][0]
    assert "speaker" not in phrase
    assert "words" not in phrase["nBest"][0]
    assert "displayWords" not in phrase["nBest"][0]


def test_profanity_removed_and_no_punctuation() -> None:
    options = ResultOptions(profanity_mode="Removed", punctuation_mode="None")
    result = build_result("s", NOW, 1.0, {0: [_phrase(0.0, ["damn", "it"])]}, options)
    assert result["recognizedPhrases"][0]["nBest"][0]["display"] == "It"


def test_report() -> None:
    report = build_report([InputOutcome("a"), InputOutcome("b", "InvalidAudioFormat", "bad")])
    parsed = TranscriptionReport.model_validate(report)
    assert (parsed.successful_transcriptions_count, parsed.failed_transcriptions_count) == (1, 1)
    assert parsed.details[1].error_kind == "InvalidAudioFormat"
    assert "errorKind" not in report["details"][0]


def test_decode_formats_and_garbage() -> None:
    tone = bursts([(0.0, 1.0)], 1.0)
    for fmt in ("WAV", "FLAC", "MP3"):
        samples, rate = decode(encode([tone, tone], fmt))
        assert samples.shape[1] == 2
        assert rate == RATE
    with pytest.raises(UndecodableAudioError, match="not a supported audio format"):
        decode(b"this is not audio" * 50)
    with pytest.raises(UndecodableAudioError, match="empty"):
        decode(b"")


def test_script_metadata_parsing() -> None:
    assert parse_script('[["a", "b"], ["c"]]') == (("a", "b"), ("c",))
    assert parse_script('["a"]') == (("a",),)
    assert parse_script("not json") is None
    assert parse_script("[1, 2]") is None
    assert strip_query("https://h/c/b.wav?sv=1&sig=secret") == "https://h/c/b.wav"


def test_filter_language() -> None:
    match = parse_filter(
        "displayName eq 'it''s' or status eq 'Failed' and locale ne 'de-DE'",
        ("displayName", "status", "locale"),
        ("createdDateTime",),
    )
    assert match({"displayName": "it's"})
    assert match({"displayName": "x", "status": "Failed", "locale": "en-US"})
    assert not match({"displayName": "x", "status": "Failed", "locale": "de-DE"})
    by_time = parse_filter("createdDateTime gt 2024-01-01T00:00:00Z", (), ("createdDateTime",))
    assert by_time({"createdDateTime": "2024-06-01T00:00:00Z"})
    assert not by_time({"createdDateTime": "2023-06-01T00:00:00Z"})
    for bad in ("displayName contains 'x'", "nope eq 'x'", "displayName eq 'x' xor status eq 'y'"):
        with pytest.raises(ApiError) as info:
            parse_filter(bad, ("displayName", "status"), ())
        assert info.value.inner_code == "UnsupportedFilter"


def test_content_tokens() -> None:
    signer = ContentSigner()
    url = signer.url("http://e", "job", "file", "a.json", NOW + timedelta(minutes=5))
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    expiry = query["se"].replace("%3A", ":")
    signer.check("job", "file", expiry, query["sig"], NOW)
    with pytest.raises(TokenError, match="expiry"):
        signer.check("job", "file", expiry, query["sig"], NOW + timedelta(minutes=6))
    with pytest.raises(TokenError, match="signature"):
        signer.check("job", "other", expiry, query["sig"], NOW)
    with pytest.raises(TokenError):
        ContentSigner().check("job", "file", expiry, query["sig"], NOW)


@pytest.mark.parametrize("sig", ["é" * 43, "签名", "\ud800", "sig\x00"])
def test_content_token_with_a_non_ascii_signature_is_refused_not_a_crash(sig: str) -> None:
    signer = ContentSigner()
    url = signer.url("http://e", "job", "file", "a.json", NOW + timedelta(minutes=5))
    expiry = url.split("se=", 1)[1].split("&", 1)[0].replace("%3A", ":")
    with pytest.raises(TokenError, match="signature"):
        signer.check("job", "file", expiry, sig, NOW)
    with pytest.raises(TokenError):
        signer.check("job", "file", "2099-01-01T00:00:00Zé", sig, NOW)


def test_rate_limiter_window() -> None:
    limiter = RateLimiter()
    limit = Rate.parse("2/10")
    limiter.check(limit, now=0.0)
    limiter.check(limit, now=1.0)
    with pytest.raises(ApiError) as info:
        limiter.check(limit, now=2.0)
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "8"
    limiter.check(limit, now=10.5)  # the first call left the window


def test_behaviour_updates_are_validated() -> None:
    behaviour = Behaviour()
    assert behaviour.updated({"rate_limit": "100/10"}).rate_limit == Rate(100, 10.0)
    for bad in ({"error_rate": 2}, {"nope": 1}, {"rate_limit": "fast"}, {"latency": "x"}):
        with pytest.raises(ValueError):
            behaviour.updated(bad)
    invalid: list[dict[str, object]] = [
        {"concurrent_files": 0},
        {"concurrent_files": 1.5},
        {"file_fail_share": -0.1},
    ]
    for change in invalid:
        with pytest.raises(ValueError):
            behaviour.updated(change)
    assert behaviour.updated({"concurrent_files": 3}).concurrent_files == 3


def test_file_slots_are_fifo_by_job_submission() -> None:
    slots = FileSlots()
    slots.add(2, "later", 1)
    slots.add(1, "earlier", 2)  # admitted late (its container was being listed): still first
    assert slots.take(limit=2) == ("earlier", 0)
    assert slots.take(limit=2) == ("earlier", 1)
    assert slots.take(limit=2) is None  # both slots busy
    assert (slots.running, slots.waiting) == (2, 1)
    slots.release()
    assert slots.take(limit=2) == ("later", 0)
    assert slots.take(limit=5) is None  # nothing waiting


def test_file_slots_drop_a_deleted_jobs_waiting_files() -> None:
    slots = FileSlots()
    slots.add(1, "gone", 3)
    slots.add(2, "kept", 1)
    assert slots.take(limit=1) == ("gone", 0)
    slots.drop("gone")
    assert slots.waiting == 1
    slots.release()
    assert slots.take(limit=1) == ("kept", 0)
    assert (slots.running, slots.waiting) == (1, 0)


def test_custom_model_file(tmp_path) -> None:
    phrases = tmp_path / "p.txt"
    phrases.write_text("hello there\n\n  my account number  \n", encoding="utf-8")
    model = load_custom_model(f"Calls={phrases}")
    assert model.id == custom_model_id("Calls")
    assert model.phrases == ("hello there", "my account number")
    with pytest.raises(ValueError, match=r"NAME=phrases\.txt"):
        load_custom_model("no-equals")
    with pytest.raises(ValueError, match="cannot read"):
        load_custom_model(f"X={tmp_path / 'missing.txt'}")


def _no_models(model_self: str, locale: str) -> str | None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("change", "inner"),
    [
        ({"displayName": None}, "InvalidPayload"),
        ({"locale": ""}, "InvalidPayload"),
        ({"locale": "english"}, "InvalidLocale"),
        ({"properties": {}}, "InvalidTimeToLive"),
        ({"properties": {"timeToLiveHours": 2}}, "InvalidTimeToLive"),
        ({"contentContainerUrl": "https://x/c?sig=1"}, "OnlyOneOfUrlsOrContainerOrDataset"),
        ({"contentUrls": ["https://x/a"] * 1001}, "ExceededNumberOfRecordingsUris"),
        ({"contentUrls": ["ftp://x/a"]}, "InvalidRecordingsUri"),
        ({"properties": {"timeToLiveHours": 48, "channels": [2]}}, "InvalidChannels"),
        ({"properties": {"timeToLiveHours": 48, "channels": []}}, "InvalidChannels"),
        ({"properties": {"timeToLiveHours": 48, "punctuationMode": "x"}}, "InvalidParameterValue"),
        (
            {"properties": {"timeToLiveHours": 48, "diarization": {"maxSpeakers": 40}}},
            "InvalidParameterValue",
        ),
    ],
)
def test_create_validation(change: dict[str, object], inner: str) -> None:
    body: dict[str, object] = {
        "displayName": "x",
        "locale": "en-US",
        "contentUrls": ["https://x/a.wav"],
        "properties": {"timeToLiveHours": 48},
    }
    body.update(change)
    with pytest.raises(ApiError) as info:
        parse_create(body, _no_models)
    assert info.value.status == 400
    assert info.value.inner_code == inner
    assert info.value.body()["innerError"]["code"] == inner


def test_create_defaults() -> None:
    spec = parse_create(
        {
            "displayName": "x",
            "locale": "en-US",
            "contentUrls": ["https://x/a.wav"],
            "properties": {
                "timeToLiveHours": 48,
                "diarization": {"enabled": True, "maxSpeakers": 3},
            },
        },
        _no_models,
    )
    assert spec.channels == (0, 1)
    assert spec.profanity_mode == "Masked"
    assert spec.max_speakers == 3


def test_display_form_capitalises_the_first_word_and_the_pronoun_i() -> None:
    words = ["hi", "i", "think", "i'm", "in", "line"]
    assert display_form(words, "DictatedAndAutomatic") == ["Hi", "I", "think", "I'm", "in", "line."]
    assert display_form(["it", "is"], "None") == ["It", "is"]
    assert display_form([], "Automatic") == []
