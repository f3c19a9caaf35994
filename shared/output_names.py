"""Where a recording's outputs and error report go: pure name arithmetic.

Outputs live under the input's full blob name used as a folder prefix
(``calls/2024/x.wav/channel_0.json``); the error report is ``<name>.json`` in the error
container. Blob names may hold any Unicode, spaces, ``#``, ``%`` and ``?`` (the SDK quotes
them), but some segments would be rewritten by URL normalisation on the way to Storage
(``.``, ``..``, empty segments from ``//``), letting an output land outside its prefix; those
segments are spelled out instead. Names are kept within Storage's 1,024-character limit by
shortening the prefix and adding a short hash of the full name, so two long names never meet.

`OUTPUT_FORMATS` names the products a recording can get (the ``OUTPUT_FORMATS`` setting
chooses among them; `shared.transcripts` renders them). It lives here, in a module without
heavy imports, so that `shared.settings` can check the setting at start-up cheaply.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["MAX_BLOB_NAME", "OUTPUT_FORMATS", "error_report_name", "output_name", "output_prefix"]

# channels: channel_N.json; raw: result.json; json/txt/vtt/srt: transcript.<format>.
OUTPUT_FORMATS: Final = frozenset({"channels", "raw", "json", "txt", "vtt", "srt"})
MAX_BLOB_NAME: Final = 1024
# Longest relative name written under a prefix ("/transcript.json", "/channel_NN.json").
_LONGEST_SUFFIX: Final = len("/transcript.json") + 8
_SEGMENT_SPELLING: Final = {"": "%2F", ".": "%2E", "..": "%2E%2E"}


def output_prefix(name: str) -> str:
    """The folder (no trailing slash) that holds the outputs of input blob `name`."""
    if not name:
        raise ValueError("an input blob name cannot be empty")
    safe = "/".join(_SEGMENT_SPELLING.get(seg, seg) for seg in name.split("/"))
    # A name ending in "/" would give an empty last segment: spelled out above too.
    return _fit(safe, name, MAX_BLOB_NAME - _LONGEST_SUFFIX)


def output_name(name: str, relative: str) -> str:
    """The output blob for product `relative` (e.g. ``channel_0.json``) of input `name`."""
    if not relative or relative.startswith("/") or ".." in relative.split("/"):
        raise ValueError(f"not a relative product name: {relative!r}")
    return f"{output_prefix(name)}/{relative}"


def error_report_name(name: str) -> str:
    """The error report blob of input `name`: ``<name>.json``."""
    return output_prefix(name) + ".json"


def _fit(safe: str, original: str, limit: int) -> str:
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(original.encode()).hexdigest()[:16]
    return f"{safe[: limit - len(digest) - 1].rstrip('/')}~{digest}"
