"""`Secret`: a credential (Speech key, web hook secret) that never turns into text by accident.

A plain string gets printed by `str()`, f-strings, ``%s`` log formatting, `json.dumps` and
exception messages; any of those would ship the key to Application Insights. A `Secret` is
not a `str`: every one of those shows ``Secret('***')`` (or fails, for JSON and ``+``), and
the value comes out only through `reveal()`, which the few places that must send it call
explicitly (the Speech auth header, the web hook HMAC and its registration body).
"""

from __future__ import annotations

import hmac
from typing import Final, final

__all__ = ["NO_SECRET", "Secret"]


@final
class Secret:
    """A secret string. Truthy when set; equal to another `Secret` with the same value."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str = "") -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The secret value. Call it only where the value is sent or signed with, never to log."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        # f"{secret}" and format(secret, "s") go through here, not __str__.
        return format(repr(self), format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        # Settings holding a Secret are hashed (one runtime per settings); equal secrets
        # must hash alike. Python's str hash is salted per process, so this leaks nothing.
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # copy/deepcopy/pickle keep the value; that is not text a person reads.
        return (Secret, (self._value,))


NO_SECRET: Final = Secret("")
