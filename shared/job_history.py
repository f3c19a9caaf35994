"""A job's short transition history: which state it entered, when, and with which reason code.

Kept on the job record itself (the ``History`` property of its row), so `GET /api/jobs/{key}`
answers "what happened to this call" with one point read. Capped: the first entries (how the
job started) and the latest ones are kept, the middle of a very long life is dropped and
counted, so a row never outgrows a Table property. Pure: encode/decode and append.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = ["HISTORY_CAP", "Transition", "append", "decode", "encode"]

# 4 first + 16 latest entries: about 1.5 KB as JSON, far below the 64 KiB of a property.
HISTORY_CAP: Final = 20
_HEAD: Final = 4


@dataclass(frozen=True)
class Transition:
    """The job entered `state` at `at` (UTC); `code` is the reason code it carried, if any."""

    state: str
    at: datetime
    code: str = ""


def append(history: tuple[Transition, ...], entry: Transition) -> tuple[Transition, ...]:
    """`history` plus `entry`, keeping the first `_HEAD` and the latest entries within the cap."""
    grown = (*history, entry)
    if len(grown) <= HISTORY_CAP:
        return grown
    return grown[:_HEAD] + grown[-(HISTORY_CAP - _HEAD) :]


def encode(history: tuple[Transition, ...]) -> str:
    """Compact JSON for the Table property (``[[state, iso time, code], ...]``)."""
    return json.dumps([[t.state, t.at.isoformat(), t.code] for t in history], separators=(",", ":"))


def decode(text: str | None) -> tuple[Transition, ...]:
    """The history a property holds; an empty or unreadable one is an empty history (a row
    written before histories existed, or edited by hand, still loads)."""
    if not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(
            Transition(state=str(s), at=datetime.fromisoformat(a), code=str(c)) for s, a, c in items
        )
    except (ValueError, TypeError):
        return ()
