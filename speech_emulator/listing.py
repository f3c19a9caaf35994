"""List endpoints: ``skip``/``top`` paging with ``@nextLink``, and the ``filter`` language.

The filter supports what the service documents for transcriptions: ``prop op value``
clauses with ``eq``/``ne`` on text properties, ``gt``/``ge``/``lt``/``le`` on timestamps,
joined by ``and``/``or`` (``and`` binds tighter), optionally negated with ``not``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from speech_emulator.errors import invalid
from speech_emulator.timefmt import parse_timestamp

MAX_TOP = 100
DEFAULT_TOP = 100

_CLAUSE = re.compile(
    r"\s*(?P<not>not\s+)?(?P<prop>[A-Za-z]+)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+"
    r"(?P<value>'(?:[^']|'')*'|[^\s']+)\s*",
    re.IGNORECASE,
)
_JOIN = re.compile(r"\s*(and|or)\s+", re.IGNORECASE)

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Page:
    """Which slice of a list to return."""

    skip: int
    top: int


def parse_page(query: Mapping[str, str]) -> Page:
    """Read ``skip`` and ``top``; 400 when they are not in range."""
    try:
        skip = int(query.get("skip", "0"))
        top = int(query.get("top", str(DEFAULT_TOP)))
    except ValueError as exc:
        raise invalid("'skip' and 'top' must be integers.", "InvalidParameterValue") from exc
    if skip < 0 or not 1 <= top <= MAX_TOP:
        raise invalid(
            f"'skip' must be >= 0 and 'top' between 1 and {MAX_TOP}; got skip={skip}, top={top}.",
            "UnsupportedPagination",
        )
    return Page(skip, top)


def paginate(
    items: Sequence[Any],
    page: Page,
    next_link: Callable[[dict[str, str]], str],
    filter_text: str | None,
) -> tuple[Sequence[Any], str | None]:
    """The page's items and the absolute ``@nextLink`` (None on the last page)."""
    chunk = items[page.skip : page.skip + page.top]
    if page.skip + page.top >= len(items):
        return chunk, None
    query = {"skip": str(page.skip + page.top), "top": str(page.top)}
    if filter_text:
        query["filter"] = filter_text
    return chunk, next_link(query)


def _literal(raw: str) -> str:
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    return raw


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None:
        return False
    return {
        "gt": left > right,
        "ge": left >= right,
        "lt": left < right,
        "le": left <= right,
    }[op]


def parse_filter(
    text: str | None, text_props: Sequence[str], time_props: Sequence[str]
) -> Predicate:
    """Compile a filter expression into a predicate over an entity dict; 400 when unsupported."""
    if not text or not text.strip():
        return lambda _entity: True
    groups: list[list[Predicate]] = [[]]
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if not match:
            raise _filter_error(text)
        groups[-1].append(_clause(match, text_props, time_props, text))
        pos = match.end()
        if pos >= len(text):
            break
        join = _JOIN.match(text, pos)
        if not join:
            raise _filter_error(text)
        if join.group(1).lower() == "or":
            groups.append([])
        pos = join.end()
    return lambda entity: any(all(p(entity) for p in group) for group in groups)


def _filter_error(text: str) -> Exception:
    return invalid(
        f"The filter {text!r} is not supported. Use clauses like displayName eq 'name' or "
        "createdDateTime gt 2024-01-01T00:00:00Z joined by and/or.",
        "UnsupportedFilter",
    )


def _clause(
    match: re.Match[str], text_props: Sequence[str], time_props: Sequence[str], text: str
) -> Predicate:
    prop, op = match.group("prop"), match.group("op").lower()
    negate = bool(match.group("not"))
    value = _literal(match.group("value"))
    if prop in time_props:
        try:
            moment: datetime = parse_timestamp(value)
        except ValueError as exc:
            raise _filter_error(text) from exc

        def by_time(entity: Mapping[str, Any]) -> bool:
            raw = entity.get(prop)
            left = parse_timestamp(raw) if isinstance(raw, str) else None
            return _compare(op, left, moment) != negate

        return by_time
    if prop in text_props and op in ("eq", "ne"):
        return lambda entity: _compare(op, entity.get(prop), value) != negate
    raise _filter_error(text)
