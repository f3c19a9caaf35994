"""How well a demo transcript matches the samples' expected text (samples/expected.json)."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

_LINE_PREFIX = re.compile(r"^\[[^\]]*\]\s*[^:]+:\s*")
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped."""
    return _WORD.findall(text.lower())


def transcript_words(transcript_txt: str) -> list[str]:
    """The spoken words of a transcript.txt (`[hh:mm:ss.fff] Speaker: text` lines)."""
    return [w for line in transcript_txt.splitlines() for w in words(_LINE_PREFIX.sub("", line))]


def word_accuracy(expected: list[str], actual: list[str]) -> float:
    """Share of expected words found in order in `actual` (1.0 = all), via difflib matching."""
    if not expected:
        return 1.0 if not actual else 0.0
    matcher = difflib.SequenceMatcher(a=expected, b=actual, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return matched / max(len(expected), len(actual))


def expected_words(expected_json: Path) -> dict[str, list[str]]:
    """Expected words per sample file from samples/expected.json (`files.<name>.turns`)."""
    if not expected_json.exists():
        return {}
    document: Any = json.loads(expected_json.read_text(encoding="utf-8"))
    files = document.get("files", {}) if isinstance(document, dict) else {}
    result: dict[str, list[str]] = {}
    for name, spec in files.items():
        turns = spec.get("turns", []) if isinstance(spec, dict) else []
        ordered = sorted(turns, key=lambda t: float(t.get("start_s", 0)))
        result[name] = [w for turn in ordered for w in words(str(turn.get("text", "")))]
    return result
