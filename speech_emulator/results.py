"""Build the documented result file (kind ``Transcription``) and report file of a job.

Pure functions: engines' phrases in, JSON-ready dicts out. Display forms are simple: the
first letter and the pronoun "I" capitalised and a final period (unless punctuation is
off); ``itn`` equals the lexical form; the profanity filter applies to ``maskedITN`` and
``display``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from speech_emulator.engines.base import Phrase, Word
from speech_emulator.timefmt import iso_duration, iso_timestamp, to_ticks

# A token list, enough to exercise the profanity modes; not a moderation service.
PROFANITY = frozenset({"damn", "hell", "crap", "shit", "fuck", "bastard"})


@dataclass(frozen=True)
class ResultOptions:
    """What the job asked for that shapes the result file."""

    word_level_timestamps: bool = False
    display_word_timestamps: bool = False
    punctuation_mode: str = "DictatedAndAutomatic"
    profanity_mode: str = "Masked"
    diarization: bool = False
    locale: str | None = None  # set when language identification was requested


def _filter_word(word: str, mode: str) -> str | None:
    """Apply the profanity filter to one lexical word (None = removed)."""
    if word not in PROFANITY or mode == "None":
        return word
    if mode == "Removed":
        return None
    if mode == "Tags":
        return f"<profanity>{word}</profanity>"
    return "*" * len(word)


def masked_words(words: Sequence[str], mode: str) -> list[str]:
    """The words after the profanity filter (removed words dropped)."""
    return [w for w in (_filter_word(x, mode) for x in words) if w is not None]


def display_form(words: Sequence[str], punctuation_mode: str) -> list[str]:
    """Display tokens: first letter upper case, the pronoun "I" capitalised, a final period."""
    # English display text capitalises the pronoun (and its contractions) wherever it is.
    out = ["I" + w[1:] if w == "i" or w.startswith("i'") else w for w in words]
    if not out:
        return out
    out[0] = out[0][:1].upper() + out[0][1:]
    if punctuation_mode != "None":
        out[-1] += "."
    return out


@dataclass(frozen=True)
class _Forms:
    lexical: str
    itn: str
    masked_itn: str
    display: str


def _forms(words: Sequence[str], options: ResultOptions) -> _Forms:
    masked = masked_words(words, options.profanity_mode)
    lexical = " ".join(words)
    return _Forms(
        lexical=lexical,
        itn=lexical,
        masked_itn=" ".join(masked),
        display=" ".join(display_form(masked, options.punctuation_mode)),
    )


def _timing(start_s: float, end_s: float) -> dict[str, Any]:
    duration = max(0.0, end_s - start_s)
    return {
        "offset": iso_duration(start_s),
        "duration": iso_duration(duration),
        "offsetInTicks": float(to_ticks(start_s)),
        "durationInTicks": float(to_ticks(duration)),
    }


def _word_entry(word: Word) -> dict[str, Any]:
    return {"word": word.text, **_timing(word.start_s, word.end_s), "confidence": word.confidence}


def _display_words(phrase: Phrase, options: ResultOptions) -> list[dict[str, Any]]:
    kept = [
        (w, f)
        for w in phrase.words
        if (f := _filter_word(w.text, options.profanity_mode)) is not None
    ]
    texts = display_form([f for _, f in kept], options.punctuation_mode)
    return [
        {"displayText": text, **_timing(w.start_s, w.end_s)}
        for (w, _), text in zip(kept, texts, strict=True)
    ]


def phrase_entry(phrase: Phrase, channel: int, options: ResultOptions) -> dict[str, Any]:
    """One ``recognizedPhrases`` entry."""
    forms = _forms([w.text for w in phrase.words], options)
    best: dict[str, Any] = {
        "confidence": phrase.confidence,
        "lexical": forms.lexical,
        "itn": forms.itn,
        "maskedITN": forms.masked_itn,
        "display": forms.display,
    }
    if options.word_level_timestamps:
        best["words"] = [_word_entry(w) for w in phrase.words]
    if options.display_word_timestamps:
        best["displayWords"] = _display_words(phrase, options)
    entry: dict[str, Any] = {"recognitionStatus": "Success", "channel": channel}
    if options.diarization:
        entry["speaker"] = phrase.speaker if phrase.speaker is not None else 1
    if options.locale:
        entry["locale"] = options.locale
    entry.update(_timing(phrase.start_s, phrase.end_s))
    entry["nBest"] = [best]
    return entry


def build_result(
    source: str,
    timestamp: datetime,
    duration_s: float,
    phrases_by_channel: Mapping[int, Sequence[Phrase]],
    options: ResultOptions,
) -> dict[str, Any]:
    """The result file of one input: phrases of all channels, time-ordered, plus combined text.

    ``source`` must already be stripped of its query string (no SAS in results).
    """
    recognized: list[tuple[float, int, dict[str, Any]]] = []
    combined = []
    for channel in sorted(phrases_by_channel):
        phrases = phrases_by_channel[channel]
        for phrase in phrases:
            recognized.append((phrase.start_s, channel, phrase_entry(phrase, channel, options)))
        forms = _forms([w.text for p in phrases for w in p.words], options)
        combined.append(
            {
                "channel": channel,
                "lexical": forms.lexical,
                "itn": forms.itn,
                "maskedITN": forms.masked_itn,
                "display": " ".join(
                    _forms([w.text for w in p.words], options).display for p in phrases
                ),
            }
        )
    recognized.sort(key=lambda item: (item[0], item[1]))
    return {
        "source": source,
        "timestamp": iso_timestamp(timestamp),
        "durationInTicks": to_ticks(duration_s),
        "durationMilliseconds": round(duration_s * 1000),
        "duration": iso_duration(duration_s),
        "combinedRecognizedPhrases": combined,
        "recognizedPhrases": [entry for _, _, entry in recognized],
    }


@dataclass(frozen=True)
class InputOutcome:
    """How one input ended: succeeded, or failed with a detailed error code and message."""

    source: str  # without query string
    error_kind: str | None = None
    error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the input produced a result file."""
        return self.error_kind is None


def build_report(outcomes: Sequence[InputOutcome]) -> dict[str, Any]:
    """The report file (kind ``TranscriptionReport``) of a job."""
    details: list[dict[str, Any]] = []
    for outcome in outcomes:
        item: dict[str, Any] = {
            "source": outcome.source,
            "status": "Succeeded" if outcome.succeeded else "Failed",
        }
        if not outcome.succeeded:
            item["errorKind"] = outcome.error_kind
            item["errorMessage"] = outcome.error_message
        details.append(item)
    ok = sum(1 for o in outcomes if o.succeeded)
    return {
        "successfulTranscriptionsCount": ok,
        "failedTranscriptionsCount": len(outcomes) - ok,
        "details": details,
    }
