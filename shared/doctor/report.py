"""What the doctor found: one `Check` per line, a `Report` of them, rendered safely.

A check names what it looked at (``speech.auth``), its `Status`, what it found, the setting
at fault and what to do. Rendering (text lines or JSON) scrubs every secret the doctor knows
of (keys, connection strings, client secrets) and cuts query strings (SAS) off URLs, so a
message that quotes a service's error cannot leak one. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from shared.errors import redact_urls

__all__ = ["Check", "Report", "Status", "scrub"]

_HIDDEN: Final = "***"


class Status(StrEnum):
    """How a check went. Only FAIL makes the doctor exit non-zero."""

    OK = "ok"
    WARN = "warn"  # works, but something is likely to bite (or could not be verified)
    FAIL = "fail"  # the app cannot work like this
    SKIP = "skip"  # not checked: it depends on something that failed, or does not apply


@dataclass(frozen=True)
class Check:
    """One finding: `name` (``group.item``), `status`, `message`, the `setting` at fault, `fix`."""

    name: str
    status: Status
    message: str
    setting: str = ""
    fix: str = ""

    @classmethod
    def ok(cls, name: str, message: str, *, setting: str = "") -> Check:
        """A check that passed."""
        return cls(name, Status.OK, message, setting)

    @classmethod
    def warn(cls, name: str, message: str, *, setting: str = "", fix: str = "") -> Check:
        """A check that passed with a caveat."""
        return cls(name, Status.WARN, message, setting, fix)

    @classmethod
    def fail(cls, name: str, message: str, *, setting: str = "", fix: str = "") -> Check:
        """A check that failed: `setting` is at fault, `fix` says what to do."""
        return cls(name, Status.FAIL, message, setting, fix)

    @classmethod
    def skip(cls, name: str, message: str) -> Check:
        """A check that was not made, and why."""
        return cls(name, Status.SKIP, message)


@dataclass(frozen=True)
class Report:
    """Every check, in a stable order, plus how long the doctor took."""

    checks: Sequence[Check]
    elapsed_s: float = 0.0
    secrets: Sequence[str] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not any(c.status is Status.FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """``{"ok", "elapsedSeconds", "checks": [{name, status, message, setting, fix}]}``."""
        return {
            "ok": self.ok,
            "elapsedSeconds": round(self.elapsed_s, 2),
            "checks": [
                {
                    "name": c.name,
                    "status": str(c.status),
                    "message": scrub(c.message, self.secrets),
                    "setting": c.setting,
                    "fix": scrub(c.fix, self.secrets),
                }
                for c in self.checks
            ],
        }

    def json_text(self) -> str:
        """`to_json` as indented JSON text."""
        return json.dumps(self.to_json(), indent=2)

    def lines(self) -> list[str]:
        """One line per check: ``FAIL speech.auth: <message> [SETTING] -> fix: <fix>``."""
        out = []
        for c in self.checks:
            line = f"{c.status.upper():<4} {c.name}: {scrub(c.message, self.secrets)}"
            if c.setting:
                line += f" [{c.setting}]"
            if c.fix:
                line += f" -> fix: {scrub(c.fix, self.secrets)}"
            out.append(line)
        failed = sum(c.status is Status.FAIL for c in self.checks)
        warned = sum(c.status is Status.WARN for c in self.checks)
        verdict = "all checks passed" if self.ok else f"{failed} check(s) failed"
        out.append(f"{verdict}; {warned} warning(s); {self.elapsed_s:.1f} s")
        return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets` and without URL query strings."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, _HIDDEN)
    return redact_urls(text)
