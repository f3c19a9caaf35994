"""Subtitle products of a conversation: WebVTT with voice spans, and SubRip (SRT).

One cue per recognized phrase, in conversation order; overlapping cues (cross-talk) are
valid in both formats. A cue that the service gave no duration lasts 1 ms, because both
formats require the end to come after the start.
"""

from __future__ import annotations

from shared.transcripts_model import Conversation, ConversationPhrase, one_line

__all__ = ["render_srt", "render_vtt", "srt_time", "vtt_time"]


def vtt_time(ms: int) -> str:
    """``HH:MM:SS.mmm`` as WebVTT writes a cue time."""
    return _clock(ms, ".")


def srt_time(ms: int) -> str:
    """``HH:MM:SS,mmm`` as SubRip writes a cue time."""
    return _clock(ms, ",")


def render_vtt(conv: Conversation) -> bytes:
    """The conversation as a WebVTT file: ``<v Speaker>text`` cues, UTF-8 without BOM."""
    parts = ["WEBVTT\n"]
    for number, phrase in enumerate(conv.recognized(), start=1):
        start, end = _cue_span(phrase)
        parts.append(
            f"\n{number}\n{vtt_time(start)} --> {vtt_time(end)}\n"
            f"<v {_vtt_escape(one_line(phrase.speaker))}>{_vtt_escape(one_line(phrase.text))}\n"
        )
    return "".join(parts).encode("utf-8")


def render_srt(conv: Conversation) -> bytes:
    """The conversation as a SubRip file: ``Speaker: text`` cues, UTF-8 without BOM."""
    parts: list[str] = []
    for number, phrase in enumerate(conv.recognized(), start=1):
        start, end = _cue_span(phrase)
        parts.append(
            f"{number}\n{srt_time(start)} --> {srt_time(end)}\n"
            f"{one_line(phrase.speaker)}: {one_line(phrase.text)}\n\n"
        )
    return "".join(parts).encode("utf-8")


def _cue_span(phrase: ConversationPhrase) -> tuple[int, int]:
    start = max(phrase.start_ms, 0)
    return start, max(phrase.end_ms, start + 1)


def _clock(ms: int, separator: str) -> str:
    seconds, millis = divmod(max(ms, 0), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    # The three characters WebVTT cue text and voice annotations cannot hold literally.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
