"""The `scripted` engine: deterministic phrases for tests and benchmarks, no recogniser.

Phrase timing comes from a simple energy detector on the channel; phrase text comes from
the script the job runner found in the blob's metadata (``x-ms-meta-transcript``), or a
fixed placeholder. Words are spread evenly across their phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from speech_emulator.engines.base import Phrase, RecognitionRequest, Word

PLACEHOLDER = "this is a scripted placeholder phrase"
FRAME_S = 0.025  # analysis frame
MERGE_GAP_S = 0.3  # pauses shorter than this do not split a phrase
MIN_SEGMENT_S = 0.05  # shorter bursts are clicks, not speech
RELATIVE_THRESHOLD = 0.1  # a frame is "loud" above this share of the loudest frame's RMS
ABSOLUTE_FLOOR = 1e-3  # ... and never below this RMS, so near-silence stays silent
CONFIDENCE = 0.95

_TOKEN = re.compile(r"[\w']+")


def lexical_words(text: str) -> list[str]:
    """Lexical form of a script phrase: lower case words, punctuation dropped."""
    return [w.lower() for w in _TOKEN.findall(text)]


def detect_segments(
    samples: npt.NDArray[np.float32], sample_rate: int
) -> list[tuple[float, float]]:
    """Loud stretches of a mono signal as (start_s, end_s), short pauses merged."""
    frame = max(1, round(sample_rate * FRAME_S))
    count = len(samples) // frame
    if count == 0:
        return []
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    peak = float(rms.max())
    threshold = max(peak * RELATIVE_THRESHOLD, ABSOLUTE_FLOOR)
    if peak < threshold:
        return []
    loud = np.concatenate(([False], rms >= threshold, [False])).astype(np.int8)
    edges = np.diff(loud)  # +1 where a loud run starts, -1 one past where it ends
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    segments = [
        (int(a) * frame / sample_rate, int(b) * frame / sample_rate)
        for a, b in zip(starts, ends, strict=True)
    ]
    merged: list[tuple[float, float]] = []
    for seg in segments:
        if merged and seg[0] - merged[-1][1] < MERGE_GAP_S:
            merged[-1] = (merged[-1][0], seg[1])
        else:
            merged.append(seg)
    return [s for s in merged if s[1] - s[0] >= MIN_SEGMENT_S]


def _groups(count: int, buckets: int) -> list[range]:
    """Split ``range(count)`` into ``buckets`` consecutive, near-equal, non-empty groups."""
    bounds = [round(i * count / buckets) for i in range(buckets + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(buckets)]


def align(
    segments: Sequence[tuple[float, float]], texts: Sequence[str]
) -> list[tuple[float, float, str]]:
    """Pair phrase texts with detected segments, in order, deterministically.

    Equal counts pair one to one. More segments than texts: consecutive segments are joined
    so each text gets one stretch. More texts than segments: each segment is shared by
    consecutive texts, its time split in proportion to their word counts.
    """
    if not segments or not texts:
        return []
    if len(segments) >= len(texts):
        out = []
        for text, group in zip(texts, _groups(len(segments), len(texts)), strict=True):
            out.append((segments[group[0]][0], segments[group[-1]][1], text))
        return out
    out = []
    for (start, end), group in zip(segments, _groups(len(texts), len(segments)), strict=True):
        weights = [max(1, len(lexical_words(texts[i]))) for i in group]
        total = sum(weights)
        cursor = start
        for i, weight in zip(group, weights, strict=True):
            span = (end - start) * weight / total
            out.append((cursor, cursor + span, texts[i]))
            cursor += span
    return out


def _phrase(start: float, end: float, text: str, speaker: int | None) -> Phrase | None:
    words = lexical_words(text)
    if not words:
        return None
    step = (end - start) / len(words)
    timed = tuple(
        Word(w, start + i * step, start + (i + 1) * step, CONFIDENCE) for i, w in enumerate(words)
    )
    return Phrase(start_s=start, end_s=end, words=timed, confidence=CONFIDENCE, speaker=speaker)


class ScriptedEngine:
    """Deterministic engine: energy-detected timing, scripted or placeholder text."""

    name = "scripted"

    def recognize(self, request: RecognitionRequest) -> list[Phrase]:
        """Phrases of one channel; see the module docstring."""
        segments = detect_segments(request.samples, request.sample_rate)
        texts: Sequence[str] = (
            request.script if request.script is not None else [PLACEHOLDER] * len(segments)
        )
        phrases = []
        speakers = request.diarization_max_speakers
        for index, (start, end, text) in enumerate(align(segments, texts)):
            # Diarization: alternate between two speakers (or one, if that is the maximum).
            speaker = None if speakers is None else index % min(2, max(1, speakers)) + 1
            phrase = _phrase(start, end, text, speaker)
            if phrase is not None:
                phrases.append(phrase)
        return phrases
