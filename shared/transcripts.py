"""The products the app writes for one transcribed recording, as bytes.

``render_products`` turns the service's result (the parsed JSON) into the files of the
output container: per-channel results, the merged conversation as JSON, a readable text
transcript and subtitles. Pure: the caller uploads the bytes (and writes the untouched
``result.json`` itself, format name ``raw``). All text is UTF-8 without a BOM.

Product names (the ``OUTPUT_FORMATS`` setting) and files:

========  =====================================================================
channels  ``channel_0.json``, ``channel_1.json``, ... the service's format, one channel each
raw       ``result.json`` (written by the caller from the original bytes)
json      ``transcript.json`` the merged conversation with metadata
txt       ``transcript.txt`` ``[00:01:02.340] Agent: Thank you for calling.``
vtt       ``transcript.vtt`` WebVTT with ``<v Agent>`` voice spans
srt       ``transcript.srt`` SubRip, ``Agent: text``
========  =====================================================================
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson

from shared.errors import redact_url
from shared.output_names import OUTPUT_FORMATS
from shared.results import split_by_channel
from shared.subtitles import render_srt, render_vtt, srt_time, vtt_time
from shared.transcripts_model import (
    DEFAULT_CHANNEL_LABELS,
    Conversation,
    ConversationPhrase,
    TranscriptMetadata,
    Turn,
    Word,
    build_conversation,
)

__all__ = [
    "DEFAULT_CHANNEL_LABELS",
    "OUTPUT_FORMATS",
    "TRANSCRIPT_SCHEMA_VERSION",
    "Conversation",
    "ConversationPhrase",
    "TranscriptMetadata",
    "Turn",
    "Word",
    "build_conversation",
    "channel_file_name",
    "render_json",
    "render_products",
    "render_srt",
    "render_txt",
    "render_vtt",
    "srt_time",
    "vtt_time",
]

TRANSCRIPT_SCHEMA_VERSION = 1
_CONVERSATION_FILES = {
    "json": "transcript.json",
    "txt": "transcript.txt",
    "vtt": "transcript.vtt",
    "srt": "transcript.srt",
}


def channel_file_name(channel: int) -> str:
    """The blob name (relative to the recording's folder) of one channel's result."""
    return f"channel_{channel}.json"


def render_products(
    result: Mapping[str, Any],
    meta: TranscriptMetadata,
    *,
    channel_labels: Sequence[str] = DEFAULT_CHANNEL_LABELS,
    formats: Collection[str] = OUTPUT_FORMATS,
    channels: Sequence[int] | None = None,
) -> dict[str, bytes]:
    """Relative blob name -> content of every product in ``formats``.

    ``channels`` are the requested channels (a silent one still gets its file); ``None``
    means the channels present in the result. ``raw`` is accepted but produces nothing
    here: the caller writes ``result.json`` from the bytes it downloaded.
    """
    unknown = sorted(set(formats) - OUTPUT_FORMATS)
    if unknown:
        raise ValueError(
            f"unknown output format(s) {', '.join(unknown)}: choose from "
            f"{', '.join(sorted(OUTPUT_FORMATS))}"
        )
    products: dict[str, bytes] = {}
    if "channels" in formats:
        for channel, part in split_by_channel(result, channels).items():
            products[channel_file_name(channel)] = _channel_json(part)
    wanted = [f for f in ("json", "txt", "vtt", "srt") if f in formats]
    if wanted:
        conv = build_conversation(result, meta, channel_labels)
        renderers = {"json": render_json, "txt": render_txt, "vtt": render_vtt, "srt": render_srt}
        for name in wanted:
            products[_CONVERSATION_FILES[name]] = renderers[name](conv)
    return products


def render_json(conv: Conversation) -> bytes:
    """``transcript.json``: metadata, then every phrase of every channel in time order.

    Phrases the service did not recognize (``NoMatch``, empty ``nBest``) are kept with
    ``"recognized": false``; the text products leave them out.
    """
    meta = conv.metadata
    document: dict[str, Any] = {
        "schemaVersion": TRANSCRIPT_SCHEMA_VERSION,
        "sourceName": meta.source_name,
        "jobId": meta.job_id,
        "model": meta.model,
        "locale": meta.locale,
        "locales": list(conv.locales),
        "channelCount": meta.channel_count,
        "channels": list(conv.channels),
        "speakers": list(conv.speakers),
        "durationMs": conv.duration_ms,
        "created": meta.created,
        "finished": meta.finished,
        "recognizedAt": conv.recognized_at,
        "diarization": meta.diarization,
        "languageIdentification": meta.language_identification,
    }
    if meta.candidate_locales:
        document["candidateLocales"] = list(meta.candidate_locales)
    # Metadata indented, then one phrase per line: readable and diffable, and small and
    # fast for a four-hour call (an indented word list would be most of the file).
    head = _dumps(document, orjson.OPT_INDENT_2).removesuffix(b"\n}")
    phrases = b",\n    ".join(_dumps(_phrase_json(p)) for p in conv.phrases)
    phrase_list = b"[\n    " + phrases + b"\n  ]" if phrases else b"[]"
    return head + b',\n  "phrases": ' + phrase_list + b"\n}\n"


def render_txt(conv: Conversation, *, max_pause_ms: int = 1500) -> bytes:
    """``transcript.txt``: one turn per line, ``[HH:MM:SS.mmm] Speaker: text``.

    Consecutive phrases of the same speaker less than ``max_pause_ms`` apart form one turn.
    """
    # The clock is WebVTT's (HH:MM:SS.mmm), so a line's time can be found in the .vtt too.
    return "".join(
        f"[{vtt_time(turn.start_ms)}] {turn.speaker}: {turn.text}\n"
        for turn in conv.turns(max_pause_ms)
    ).encode("utf-8")


def _phrase_json(p: ConversationPhrase) -> dict[str, Any]:
    item: dict[str, Any] = {
        "channel": p.channel,
        "speaker": p.speaker,
        "startMs": p.start_ms,
        "endMs": p.end_ms,
        "text": p.text,
        "lexical": p.lexical,
        "confidence": p.confidence,
        "status": p.status,
        "recognized": p.recognized,
    }
    if p.speaker_id is not None:
        item["speakerId"] = p.speaker_id
    if p.locale is not None:
        item["locale"] = p.locale
    words = p.word_records()
    if words is not None:
        item["words"] = words
    display_words = p.display_word_records()
    if display_words is not None:
        item["displayWords"] = display_words
    return item


def _channel_json(part: Mapping[str, Any]) -> bytes:
    source = part.get("source")
    if isinstance(source, str) and ("?" in source or "#" in source):
        # The input URL may carry a SAS; the app never stores one.
        part = {**part, "source": redact_url(source)}
    # Compact: this is the machine-readable file, as large as the service's result.
    return _dumps(part)


def _dumps(value: Any, option: int = 0) -> bytes:
    # orjson writes UTF-8 (no escapes, no BOM) about ten times faster than the json module,
    # which is what keeps a four-hour call within its time budget.
    return orjson.dumps(value, default=_plain, option=option)


def _plain(value: Any) -> Any:
    # The result may come as any Mapping/Sequence, orjson natively knows dict and list only.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
