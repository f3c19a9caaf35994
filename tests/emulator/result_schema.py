"""Pydantic models of the Speech batch transcription result and report files.

The documented format of a file of kind ``Transcription`` (one per input) and of the
``TranscriptionReport`` (one per job): the yardstick the emulator's files are checked
against, so that the local service writes what the real one writes. Pure: no Azure imports.
The models are tolerant the way a reader of a service's output must be:

- unknown fields are kept (``extra="allow"``) so nothing the service adds is lost;
- ``timestamp`` is also read from ``timeStamp``;
- ticks (1 tick = 100 ns) may be integers or floats (the service writes ``7600000.0``);
- optional parts (``words``, ``displayWords``, ``speaker``, ``locale``) may be absent.

Use ``TranscriptionResult.model_validate(json_obj)`` to check a parsed file.

Why this lives with the tests and not in ``shared/``: the app never validates a whole
result. ``shared/results.py`` reads only the fields it needs, tolerating more than the
documented format (a phrase timed by its ISO-8601 ``offset`` alone, as in
``tests/fixtures/results/tolerant.json``, is fine for the app but fails these models, which
require the ticks the service always writes), and ``result.json`` is kept byte for byte.
Validating with these models in production would reject results the app handles today,
for a second parse of every result file; as the emulator's yardstick they are exactly right.
"""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = [
    "CombinedRecognizedPhrase",
    "DisplayWord",
    "NBest",
    "RecognizedPhrase",
    "ReportDetail",
    "TranscriptionReport",
    "TranscriptionResult",
    "Word",
]


class _Tolerant(BaseModel):
    """Keeps unknown fields, accepts field names or aliases."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Word(_Tolerant):
    """A word with lexical text and timing (present with ``wordLevelTimestampsEnabled``)."""

    word: str
    offset: str | None = None  # ISO-8601 duration from the start of the audio, e.g. PT0.76S
    duration: str | None = None
    offset_in_ticks: float = Field(alias="offsetInTicks")
    duration_in_ticks: float = Field(alias="durationInTicks")
    confidence: float | None = None


class DisplayWord(_Tolerant):
    """A word in display form (``displayFormWordLevelTimestampsEnabled``)."""

    display_text: str = Field(alias="displayText")
    offset: str | None = None
    duration: str | None = None
    offset_in_ticks: float = Field(alias="offsetInTicks")
    duration_in_ticks: float = Field(alias="durationInTicks")


class NBest(_Tolerant):
    """One recognition hypothesis of a phrase; the first is the best."""

    confidence: float | None = None
    lexical: str = ""
    itn: str = ""
    masked_itn: str = Field(default="", alias="maskedITN")
    display: str = ""
    words: list[Word] | None = None
    display_words: list[DisplayWord] | None = Field(default=None, alias="displayWords")


class RecognizedPhrase(_Tolerant):
    """One phrase (a stretch of speech between pauses) on one channel."""

    recognition_status: str = Field(default="Success", alias="recognitionStatus")
    channel: int = 0
    speaker: int | None = None  # with diarization only (1-based)
    locale: str | None = None  # with language identification only
    offset: str | None = None
    duration: str | None = None
    offset_in_ticks: float = Field(alias="offsetInTicks")
    duration_in_ticks: float = Field(alias="durationInTicks")
    n_best: list[NBest] = Field(default_factory=list, alias="nBest")


class CombinedRecognizedPhrase(_Tolerant):
    """All of one channel's text, joined."""

    channel: int = 0
    lexical: str = ""
    itn: str = ""
    masked_itn: str = Field(default="", alias="maskedITN")
    display: str = ""


class TranscriptionResult(_Tolerant):
    """A result file: every phrase of every transcribed channel of one input."""

    source: str = ""  # the input URL (the service strips its SAS)
    timestamp: str | None = Field(
        default=None, validation_alias=AliasChoices("timestamp", "timeStamp")
    )
    duration_in_ticks: float | None = Field(default=None, alias="durationInTicks")
    duration_milliseconds: float | None = Field(default=None, alias="durationMilliseconds")
    duration: str | None = None
    combined_recognized_phrases: list[CombinedRecognizedPhrase] = Field(
        default_factory=list, alias="combinedRecognizedPhrases"
    )
    recognized_phrases: list[RecognizedPhrase] = Field(
        default_factory=list, alias="recognizedPhrases"
    )

    def channels(self) -> list[int]:
        """The channels that have phrases or combined text, ascending."""
        found = {p.channel for p in self.recognized_phrases}
        found |= {c.channel for c in self.combined_recognized_phrases}
        return sorted(found)


class ReportDetail(_Tolerant):
    """The outcome of one input in the report file."""

    source: str = ""
    status: str = ""  # "Succeeded" | "Failed"
    error_kind: str | None = Field(default=None, alias="errorKind")
    error_message: str | None = Field(default=None, alias="errorMessage")


class TranscriptionReport(_Tolerant):
    """The report file of a job (file kind ``TranscriptionReport``)."""

    successful_transcriptions_count: int = Field(default=0, alias="successfulTranscriptionsCount")
    failed_transcriptions_count: int = Field(default=0, alias="failedTranscriptionsCount")
    details: list[ReportDetail] = Field(default_factory=list)
