"""The merged conversation: every channel's phrases in time order, with speaker labels.

Built once from the service's result; the product renderers (``transcripts``,
``subtitles``) only read it. Times are whole milliseconds from the start of the audio.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.results import (
    TICKS_PER_MS,
    ResultFormatError,
    channel_of,
    recognized_phrases,
    result_channels,
    result_duration_ms,
    result_timestamp,
    time_span_ms,
)

__all__ = [
    "DEFAULT_CHANNEL_LABELS",
    "Conversation",
    "ConversationPhrase",
    "TranscriptMetadata",
    "Turn",
    "Word",
    "build_conversation",
    "one_line",
]

DEFAULT_CHANNEL_LABELS: tuple[str, ...] = ("Agent", "Customer")
SUCCESS = "Success"
_NUMBER = (float, int)

# Every line break Python's str.splitlines() knows: a caption or a transcript line must
# stay one line, but other characters (non-breaking spaces, ...) are kept as written.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class TranscriptMetadata:
    """What the app knows about the job that produced a result (not in the result file)."""

    source_name: str
    job_id: str | None
    model: str | None
    locale: str
    channel_count: int
    created: str | None
    finished: str | None
    diarization: bool = False
    language_identification: bool = False
    candidate_locales: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.channel_count, bool) or self.channel_count < 1:
            raise ValueError(
                f"channel_count is {self.channel_count!r}: a recording has at least one "
                "channel (1 for mono, 2 for a stereo call)"
            )


@dataclass(frozen=True, slots=True)
class Word:
    """One word with its timing; ``confidence`` only on lexical words."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class ConversationPhrase:
    """One recognized phrase of the service, placed in the conversation.

    ``index`` is the phrase's position in the service's ``recognizedPhrases``; ``text``,
    ``lexical``, ``confidence`` and the words come from the top-ranked ``nBest`` entry.
    The words stay in the service's form until asked for (``words()``, ``word_records()``):
    a long call has hundreds of thousands of them and only the JSON product needs them.
    """

    index: int
    channel: int
    speaker: str
    start_ms: int
    end_ms: int
    status: str
    text: str
    lexical: str
    confidence: float | None
    locale: str | None = None
    speaker_id: int | None = None
    raw_words: Sequence[Mapping[str, Any]] | None = field(default=None, repr=False)
    raw_display_words: Sequence[Mapping[str, Any]] | None = field(default=None, repr=False)

    def words(self) -> tuple[Word, ...] | None:
        """The lexical words with timing and confidence; None when the service gave none."""
        records = self.word_records()
        if records is None:
            return None
        return tuple(Word(r["word"], r["startMs"], r["endMs"], r["confidence"]) for r in records)

    def display_words(self) -> tuple[Word, ...] | None:
        """The display-form words with timing; None when the service gave none."""
        records = self.display_word_records()
        if records is None:
            return None
        return tuple(Word(r["displayText"], r["startMs"], r["endMs"]) for r in records)

    def word_records(self) -> list[dict[str, Any]] | None:
        """The lexical words as ``{"word", "startMs", "endMs", "confidence"}`` objects."""
        where = f"recognizedPhrases[{self.index}].nBest[0].words"
        return _word_records(self.raw_words, "word", where, with_confidence=True)

    def display_word_records(self) -> list[dict[str, Any]] | None:
        """The display-form words as ``{"displayText", "startMs", "endMs"}`` objects."""
        where = f"recognizedPhrases[{self.index}].nBest[0].displayWords"
        return _word_records(self.raw_display_words, "displayText", where, with_confidence=False)

    @property
    def recognized(self) -> bool:
        """True when the phrase belongs in the text products (txt, vtt, srt)."""
        return self.status == SUCCESS and bool(self.text.strip())


@dataclass(frozen=True, slots=True)
class Turn:
    """Consecutive recognized phrases of one speaker, read as one line."""

    speaker: str
    channel: int
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """A whole call: metadata and all phrases of all channels, ordered by start time."""

    metadata: TranscriptMetadata
    duration_ms: int | None
    recognized_at: str | None
    channels: tuple[int, ...]
    locales: tuple[str, ...]
    speakers: tuple[str, ...]
    phrases: tuple[ConversationPhrase, ...]

    def recognized(self) -> Iterator[ConversationPhrase]:
        """The phrases that go into the text products, in conversation order."""
        return (p for p in self.phrases if p.recognized)

    def turns(self, max_pause_ms: int = 1500) -> list[Turn]:
        """Recognized phrases joined into turns.

        A phrase joins the previous turn when it has the same speaker and starts less than
        ``max_pause_ms`` after that turn ends (overlap counts as no pause).
        """
        if max_pause_ms < 0:
            raise ValueError(f"max_pause_ms is {max_pause_ms}: it must be 0 or more")
        turns: list[Turn] = []
        speaker: str | None = None
        channel = start = end = 0
        texts: list[str] = []
        for phrase in self.recognized():
            if (
                speaker == phrase.speaker
                and channel == phrase.channel
                and phrase.start_ms - end < max_pause_ms
            ):
                texts.append(one_line(phrase.text))
                end = max(end, phrase.end_ms)
                continue
            if speaker is not None:
                turns.append(Turn(speaker, channel, start, end, " ".join(texts)))
            speaker, channel = phrase.speaker, phrase.channel
            start, end, texts = phrase.start_ms, phrase.end_ms, [one_line(phrase.text)]
        if speaker is not None:
            turns.append(Turn(speaker, channel, start, end, " ".join(texts)))
        return turns


def one_line(text: str) -> str:
    """``text`` with line breaks turned into spaces and outer whitespace removed."""
    return _LINE_BREAKS.sub(" ", text).strip()


def build_conversation(
    result: Mapping[str, Any],
    meta: TranscriptMetadata,
    channel_labels: Sequence[str] = DEFAULT_CHANNEL_LABELS,
) -> Conversation:
    """Merge all channels of a service result into one time-ordered conversation.

    Speaker labels: with more than one channel, ``channel_labels[channel]`` (``Channel N``
    past the end of the list); mono with diarization, ``Speaker N`` from the service's
    ``speaker`` number; mono without it, the first label. Overlapping phrases (cross-talk)
    are ordered by (start, channel, position in the result), so the order is stable.
    """
    labels = [label.strip() for label in channel_labels]
    channels = tuple(sorted(set(range(meta.channel_count)).union(result_channels(result))))
    # A result with phrases beyond channel 0 is a multi-channel call, whatever meta says.
    stereo = len(channels) > 1
    phrases = [
        _phrase(index, raw, labels, stereo) for index, raw in enumerate(recognized_phrases(result))
    ]
    phrases.sort(key=lambda p: (p.start_ms, p.channel, p.index))

    speakers = tuple(dict.fromkeys(p.speaker for p in phrases))
    phrase_locales = tuple(dict.fromkeys(p.locale for p in phrases if p.locale))
    return Conversation(
        metadata=meta,
        duration_ms=result_duration_ms(result),
        recognized_at=result_timestamp(result),
        channels=channels,
        locales=phrase_locales or (meta.locale,),
        speakers=speakers,
        phrases=tuple(phrases),
    )


def _phrase(
    index: int, raw: Mapping[str, Any], labels: Sequence[str], stereo: bool
) -> ConversationPhrase:
    where = f"recognizedPhrases[{index}]"
    channel = channel_of(raw)
    start_ms, end_ms = time_span_ms(raw, where)
    speaker_id = raw.get("speaker")
    if not isinstance(speaker_id, int) or isinstance(speaker_id, bool):
        speaker_id = None
    status = raw.get("recognitionStatus")
    status = status if isinstance(status, str) else SUCCESS

    nbest = raw.get("nBest")
    best: Mapping[str, Any] = {}
    if isinstance(nbest, list) and nbest:
        if not isinstance(nbest[0], Mapping):
            raise ResultFormatError(f"{where}.nBest[0] is not an object")
        best = nbest[0]
    confidence = best.get("confidence")
    locale = raw.get("locale")
    return ConversationPhrase(
        index=index,
        channel=channel,
        speaker=_speaker(channel, speaker_id, labels, stereo),
        start_ms=start_ms,
        end_ms=end_ms,
        status=status,
        text=_text(best.get("display")),
        lexical=_text(best.get("lexical")),
        confidence=_number(confidence),
        locale=locale if isinstance(locale, str) and locale else None,
        speaker_id=speaker_id,
        raw_words=_word_list(best.get("words"), f"{where}.nBest[0].words"),
        raw_display_words=_word_list(best.get("displayWords"), f"{where}.nBest[0].displayWords"),
    )


def _speaker(channel: int, speaker_id: int | None, labels: Sequence[str], stereo: bool) -> str:
    if not stereo and speaker_id is not None:
        return f"Speaker {speaker_id}"
    if stereo:
        label = labels[channel] if channel < len(labels) else ""
        return label or f"Channel {channel}"
    return (labels[0] if labels else "") or f"Channel {channel}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _word_list(value: Any, where: str) -> list[Mapping[str, Any]] | None:
    if value is None or isinstance(value, list):
        return value
    raise ResultFormatError(f"{where} must be a list of word objects, not {type(value).__name__}")


def _word_records(
    raw: Sequence[Mapping[str, Any]] | None, text_key: str, where: str, *, with_confidence: bool
) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    records: list[dict[str, Any]] = []
    append = records.append
    for position, word in enumerate(raw):
        if type(word) is not dict and not isinstance(word, Mapping):
            raise ResultFormatError(f"{where}[{position}] is not an object")
        offset: Any = word.get("offsetInTicks")
        length: Any = word.get("durationInTicks")
        # Fast path for what the service writes (numeric ticks): a long call has
        # hundreds of thousands of words. Anything else takes the tolerant path.
        if type(offset) in _NUMBER and type(length) in _NUMBER:
            start, end = round(offset / TICKS_PER_MS), round((offset + length) / TICKS_PER_MS)
        else:
            start, end = time_span_ms(word, f"{where}[{position}]")
        text = word.get(text_key)
        if type(text) is not str:
            text = _text(text)
        if with_confidence:
            confidence = word.get("confidence")
            if type(confidence) is not float and confidence is not None:
                confidence = _number(confidence)
            append({text_key: text, "startMs": start, "endMs": end, "confidence": confidence})
        else:
            append({text_key: text, "startMs": start, "endMs": end})
    return records


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
