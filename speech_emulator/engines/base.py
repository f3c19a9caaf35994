"""The seam between the emulator's job runner and its recognition engines.

The job runner decodes each input, splits it into channels and asks an engine for the
phrases of one channel at a time. Engines know nothing of HTTP, jobs or the result file
format: they turn samples into timed words. Building the documented result JSON
(ticks, ISO-8601 durations, nBest forms) is the job runner's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CustomModel:
    """A custom model built from a phrase list (`--custom-model NAME=FILE`)."""

    id: str  # UUID, the last segment of the model's `self` URL
    name: str  # the model's displayName
    phrases: tuple[str, ...]  # one phrase per non-empty line of the file


@dataclass(frozen=True)
class Word:
    """One recognised word, lexical form (lower case, no punctuation), times in seconds."""

    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class Phrase:
    """A run of words between pauses: one `recognizedPhrases` entry in the result file."""

    start_s: float
    end_s: float
    words: tuple[Word, ...]
    confidence: float
    # Set by engines that separate speakers (diarization on mono audio); 1-based like the service.
    speaker: int | None = None

    @property
    def lexical(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True)
class RecognitionRequest:
    """The audio of one channel and what the job asked for."""

    samples: npt.NDArray[np.float32]  # mono, float32 in [-1, 1]
    sample_rate: int
    channel: int
    locale: str
    model: CustomModel | None = None  # None = the base model
    # Text for the `scripted` engine: this channel's phrases from the blob's metadata.
    script: Sequence[str] | None = None
    diarization_max_speakers: int | None = None  # None = diarization off
    options: Mapping[str, object] = field(default_factory=dict)


class Engine(Protocol):
    """A recognition engine. Must be safe to call from a worker thread."""

    name: str

    def recognize(self, request: RecognitionRequest) -> list[Phrase]:
        """Return the phrases of one channel in time order (may be empty for silence)."""
        ...
