"""Reading the Speech service's transcription result file (file kind ``Transcription``).

Pure functions over the parsed JSON, as the service wrote it. Field names are read
tolerantly: ticks may be floats, a time may come only as ticks or only as an ISO-8601
duration (``PT1M2.34S``), the file's time of writing may be ``timestamp`` or ``timeStamp``.
A field this module does not know is never dropped: the per-channel view keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.errors import TranscriptionAppError

__all__ = [
    "TICKS_PER_MS",
    "ResultFormatError",
    "channel_of",
    "combined_phrases",
    "iso_duration_ms",
    "recognized_phrases",
    "result_channels",
    "result_duration_ms",
    "result_timestamp",
    "split_by_channel",
    "time_span_ms",
]

TICKS_PER_MS = 10_000  # one tick is 100 ns

# pydantic's parser implements ISO-8601 durations (PT1.5S, PT1M2.34S, P1DT2H) fully.
_DURATION = TypeAdapter(timedelta)


class ResultFormatError(TranscriptionAppError, ValueError):
    """The result file does not have the shape of a Speech ``Transcription`` result.

    Permanent: the same file will fail the same way. The message names the field.
    """


def recognized_phrases(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The result's ``recognizedPhrases`` (an absent list is an empty one)."""
    return _object_list(result, "recognizedPhrases")


def combined_phrases(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The result's ``combinedRecognizedPhrases`` (an absent list is an empty one)."""
    return _object_list(result, "combinedRecognizedPhrases")


def channel_of(item: Mapping[str, Any]) -> int:
    """The channel a phrase belongs to; a mono result may omit it, which means channel 0."""
    value = item.get("channel", 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ResultFormatError(
            f"a phrase has channel {value!r}: expected a channel number such as 0 or 1; "
            "the result file is not a Speech transcription result"
        )
    try:
        channel = int(value)
    except ValueError:
        raise ResultFormatError(
            f"a phrase has channel {value!r}: expected a channel number such as 0 or 1"
        ) from None
    if channel < 0:
        raise ResultFormatError(f"a phrase has the negative channel {channel}")
    return channel


def result_channels(result: Mapping[str, Any]) -> list[int]:
    """The channels that have at least one phrase (recognized or combined), ascending."""
    seen = {channel_of(p) for p in recognized_phrases(result)}
    seen.update(channel_of(p) for p in combined_phrases(result))
    return sorted(seen)


def split_by_channel(
    result: Mapping[str, Any], channels: Sequence[int] | None = None
) -> dict[int, dict[str, Any]]:
    """The service's result restricted to each channel.

    Every top-level field is kept as the service wrote it; ``recognizedPhrases`` and
    ``combinedRecognizedPhrases`` are filtered to that channel (phrase objects are shared,
    not copied). ``channels`` are the channels that were requested, so a silent channel
    still gets a result with empty lists; ``None`` means the channels seen in the result.
    Phrases on a channel that was not requested appear in no per-channel result.
    """
    if channels is None:
        wanted = result_channels(result)
    else:
        wanted = sorted(set(channels))
        bad = [c for c in wanted if isinstance(c, bool) or not isinstance(c, int) or c < 0]
        if bad:
            raise ValueError(
                f"requested channels {bad!r} are not channel numbers: pass non-negative "
                "integers such as [0, 1]"
            )
    phrases: dict[int, list[Mapping[str, Any]]] = {c: [] for c in wanted}
    combined: dict[int, list[Mapping[str, Any]]] = {c: [] for c in wanted}
    for phrase in recognized_phrases(result):
        bucket = phrases.get(channel_of(phrase))
        if bucket is not None:
            bucket.append(phrase)
    for phrase in combined_phrases(result):
        bucket = combined.get(channel_of(phrase))
        if bucket is not None:
            bucket.append(phrase)
    return {
        c: {**result, "combinedRecognizedPhrases": combined[c], "recognizedPhrases": phrases[c]}
        for c in wanted
    }


def iso_duration_ms(value: str) -> float:
    """Milliseconds in an ISO-8601 duration such as ``PT1.5S``, ``PT1M2.34S`` or ``PT1H``."""
    try:
        return _DURATION.validate_python(value) / timedelta(milliseconds=1)
    except ValidationError:
        raise ResultFormatError(
            f"{value!r} is not an ISO-8601 duration (expected a form such as PT1M2.34S)"
        ) from None


def time_span_ms(item: Mapping[str, Any], where: str = "a phrase") -> tuple[int, int]:
    """``(start, end)`` in whole milliseconds of a phrase or word.

    Ticks (``offsetInTicks``/``durationInTicks``) are preferred because they are exact;
    the ISO-8601 ``offset``/``duration`` are the fallback. A missing duration is zero.
    """
    start = _time_ticks(item, "offsetInTicks", "offset")
    if start is None:
        raise ResultFormatError(
            f"{where} has neither 'offsetInTicks' nor 'offset', so it cannot be placed in time"
        )
    length = _time_ticks(item, "durationInTicks", "duration") or 0.0
    # Round the end from exact ticks rather than adding two rounded values.
    return round(start / TICKS_PER_MS), round((start + length) / TICKS_PER_MS)


def result_duration_ms(result: Mapping[str, Any]) -> int | None:
    """The audio duration the service reports, in milliseconds, or None when absent."""
    value = result.get("durationMilliseconds")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value)
    ticks = _time_ticks(result, "durationInTicks", "duration")
    return None if ticks is None else round(ticks / TICKS_PER_MS)


def result_timestamp(result: Mapping[str, Any]) -> str | None:
    """When the service wrote the result (``timestamp``, some producers write ``timeStamp``)."""
    value = result.get("timestamp", result.get("timeStamp"))
    return value if isinstance(value, str) else None


def _time_ticks(item: Mapping[str, Any], ticks_key: str, iso_key: str) -> float | None:
    ticks = item.get(ticks_key)
    if isinstance(ticks, int | float) and not isinstance(ticks, bool):
        return float(ticks)
    iso = item.get(iso_key)
    if isinstance(iso, str):
        return iso_duration_ms(iso) * TICKS_PER_MS
    if ticks is not None or iso is not None:
        raise ResultFormatError(
            f"{ticks_key}={ticks!r} / {iso_key}={iso!r}: expected a number of ticks or an "
            "ISO-8601 duration"
        )
    return None


def _object_list(result: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    if not isinstance(result, Mapping):
        raise ResultFormatError(
            f"the result file is a JSON {type(result).__name__}, expected an object with "
            "'recognizedPhrases': is this the Transcription file and not the report?"
        )
    value = result.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, Mapping) for p in value):
        raise ResultFormatError(
            f"'{key}' must be a list of objects; the result file is not a Speech "
            "transcription result (or it is damaged)"
        )
    return value
