"""Time formats of the Speech API: ISO-8601 timestamps and durations, and 100-ns ticks."""

from __future__ import annotations

from datetime import UTC, datetime

TICKS_PER_SECOND = 10_000_000


def to_ticks(seconds: float) -> int:
    """Seconds to ticks (1 tick = 100 ns), rounded to the nearest tick."""
    return round(seconds * TICKS_PER_SECOND)


def iso_duration(seconds: float) -> str:
    """Format a non-negative duration like the service does: ``PT0.76S``, ``PT1M2.5S``, ``PT1H``."""
    ticks = max(0, to_ticks(seconds))
    hours, rest = divmod(ticks, 3600 * TICKS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * TICKS_PER_SECOND)
    whole, frac = divmod(rest, TICKS_PER_SECOND)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if whole or frac or out == "PT":
        sec = str(whole)
        if frac:
            sec += "." + f"{frac:07d}".rstrip("0")
        out += f"{sec}S"
    return out


def iso_timestamp(moment: datetime) -> str:
    """A UTC timestamp as the service writes it: ``2019-01-07T11:34:12Z`` (whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_timestamp_ms(moment: datetime) -> str:
    """A UTC timestamp with milliseconds (``...T11:34:12.345Z``), used by the admin stats."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or offset); naive values are taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
