"""How a setting is declared, spelled in the environment and checked: the kinds of value.

A `Kind` turns the text of an environment variable into a value (`parse`), says whether a
value is allowed (`check`, for values from the environment and from code alike) and writes
a value back as text (`spell`, for docs and sample files). Kinds raise ValueError with the
problem ("expected ..., got ..."); `SettingSpec` adds the setting's name, raising
`ConfigurationError`. `setting(...)` declares one field of a `settings_class` dataclass
(see `shared.settings`). Pure: no I/O, no Azure imports.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, dataclass_transform, overload
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from shared.errors import ConfigurationError
from shared.ncrontab import ScheduleError, to_croniter
from shared.rate_limit import RateLimit, parse_rate_limit
from shared.secret import Secret

__all__ = [
    "CONTAINER_NAME",
    "QUEUE_NAME",
    "TABLE_NAME",
    "Choice",
    "Flag",
    "Integer",
    "Kind",
    "Labels",
    "Locale",
    "Locales",
    "NameSet",
    "Number",
    "Rate",
    "Schedule",
    "SecretText",
    "SettingSpec",
    "StorageName",
    "Text",
    "Url",
    "declared_settings",
    "setting",
    "settings_class",
]

T = TypeVar("T")
_C = TypeVar("_C")

_CONTAINER_RE: Final = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_TABLE_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_LOCALE_RE: Final = re.compile(r"^[a-z]{2,3}-[A-Z][A-Za-z]{1,3}$")
_SPEC: Final = "setting"  # the key of a field's SettingSpec in its dataclass metadata
_NAME_RULES: Final = "3-63 lowercase letters, digits and single hyphens"


class Kind(ABC, Generic[T]):
    """How a setting is spelled in the environment, and which values it allows.

    `parse` and `check` raise ValueError with the problem ("expected ..., got ..."); the
    caller names the setting. (Kinds are plain classes, not dataclasses: cheaper to define,
    and this module is imported on every cold start.)
    """

    __slots__ = ()

    @abstractmethod
    def parse(self, text: str) -> T:
        """The value written as `text` (stripped, not blank). Need not be allowed: see check."""

    def check(self, value: T) -> None:
        """Raise ValueError when `value` is not allowed."""

    def spell(self, value: T) -> str:
        """`value` as it is written in the environment."""
        return str(value)


class Text(Kind[str]):
    """Any text."""

    def parse(self, text: str) -> str:
        return text


class Url(Kind[str]):
    """An http(s) URL without a query string; `optional` allows the empty string.

    Query parameters named in `droppable` are accepted and dropped (a model's `self` URL
    comes with ``?api-version=``; the app adds its own to every call). `strip_slash` drops
    trailing slashes (an endpoint is joined with paths).
    """

    __slots__ = ("droppable", "optional", "strip_slash")

    def __init__(
        self, *, optional: bool = False, droppable: tuple[str, ...] = (), strip_slash: bool = False
    ) -> None:
        self.optional = optional
        self.droppable = frozenset(droppable)
        self.strip_slash = strip_slash

    def parse(self, text: str) -> str:
        value = text
        parts = _split_url(text)
        if parts.query:
            keys = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
            if keys and keys <= self.droppable:
                value = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return value.rstrip("/") if self.strip_slash else value

    def check(self, value: str) -> None:
        if self.optional and value == "":
            return
        parts = _split_url(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL")
        if parts.query:
            raise ValueError("expected a URL without a query string")


def _split_url(value: str) -> SplitResult:
    try:
        return urlsplit(value)
    except (TypeError, ValueError):  # e.g. "http://[::1": not a URL at all
        raise ValueError("expected an http(s) URL") from None


class Choice(Kind[str]):
    """One of `choices`, in any letter case; `aliases` are other (lowercase) spellings."""

    __slots__ = ("aliases", "choices")

    def __init__(self, choices: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> None:
        self.choices = choices
        self.aliases = dict(aliases or {})

    def parse(self, text: str) -> str:
        lowered = text.lower()
        for choice in self.choices:
            if lowered == choice.lower():
                return choice
        return self.aliases.get(lowered, text)

    def check(self, value: str) -> None:
        if value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}; got {value!r}")


class Integer(Kind[int]):
    """A whole number from `low` to `high`."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def parse(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None

    def check(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"expected a value from {self.low} to {self.high}, got {value}")


class Number(Kind[float]):
    """A number from `low` to `high`."""

    __slots__ = ("high", "low")

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None

    def check(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        if not self.low <= value <= self.high:  # also refuses nan
            raise ValueError(f"expected a value from {self.low:g} to {self.high:g}, got {value:g}")

    def spell(self, value: float) -> str:
        return f"{value:g}"


class Flag(Kind[bool]):
    """true/false, also spelled 1/0, yes/no, on/off."""

    def parse(self, text: str) -> bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")

    def check(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")

    def spell(self, value: bool) -> str:
        return "true" if value else "false"


class StorageName(Kind[str]):
    """A container, queue or table name (`what`), as Storage's naming `rules` allow."""

    __slots__ = ("pattern", "rules", "what")

    def __init__(self, what: str, pattern: re.Pattern[str], rules: str) -> None:
        self.what, self.pattern, self.rules = what, pattern, rules

    def parse(self, text: str) -> str:
        return text

    def check(self, value: str) -> None:
        if not self.pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {self.what} name ({self.rules})")


class Locale(Kind[str]):
    """A locale such as en-US."""

    def parse(self, text: str) -> str:
        return text

    def check(self, value: str) -> None:
        _check_locale(value)


class Schedule(Kind[str]):
    """A 6-field NCRONTAB expression (the Functions timer's form, with seconds)."""

    def parse(self, text: str) -> str:
        return text

    def check(self, value: str) -> None:
        # The Functions host reads schedules with NCrontab; refuse here what it would refuse
        # at start-up (7 for Sunday, cron extensions, a field out of range), naming the field.
        try:
            to_croniter(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None


class Labels(Kind[tuple[str, ...]]):
    """A comma-separated list of at least one label."""

    def parse(self, text: str) -> tuple[str, ...]:
        return _split(text)

    def check(self, value: tuple[str, ...]) -> None:
        if not value or not all(label.strip() for label in value):
            raise ValueError("expected comma-separated labels, e.g. Agent,Customer")

    def spell(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class Locales(Kind[tuple[str, ...]]):
    """None, or `low` to `high` comma-separated locales."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def parse(self, text: str) -> tuple[str, ...]:
        return _split(text)

    def check(self, value: tuple[str, ...]) -> None:
        if value and not self.low <= len(value) <= self.high:
            raise ValueError(
                f"expected {self.low} to {self.high} locales (the service's limit), "
                f"got {len(value)}"
            )
        for locale in value:
            _check_locale(locale)

    def spell(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class NameSet(Kind[frozenset[str]]):
    """``all``, or a comma-separated list of `names` (any letter case)."""

    __slots__ = ("names",)

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def parse(self, text: str) -> frozenset[str]:
        given = [name.lower() for name in _split(text)]
        return self.names if given == ["all"] else frozenset(given)

    def check(self, value: frozenset[str]) -> None:
        if not value or not value <= self.names:
            raise ValueError(
                f"expected 'all' or a comma list of {', '.join(sorted(self.names))}; "
                f"got {', '.join(sorted(value)) or 'nothing'}"
            )

    def spell(self, value: frozenset[str]) -> str:
        return "all" if value == self.names else ",".join(sorted(value))


class Rate(Kind[RateLimit | None]):
    """``CALLS/SECONDS``, or 0/off for no limit."""

    def parse(self, text: str) -> RateLimit | None:
        try:
            return parse_rate_limit(text)
        except ValueError as exc:
            raise ValueError(
                f"{exc} (the Speech S0 tier allows 100 per 10 s; F0 far fewer)"
            ) from None

    def check(self, value: RateLimit | None) -> None:
        if value is not None and not isinstance(value, RateLimit):
            raise ValueError(f"expected CALLS/SECONDS such as 90/10, got {value!r}")

    def spell(self, value: RateLimit | None) -> str:
        return "off" if value is None else str(value)


class SecretText(Kind[Secret]):
    """Any text, kept as a `Secret` (never shown)."""

    def parse(self, text: str) -> Secret:
        return Secret(text)

    def check(self, value: Secret) -> None:
        if not isinstance(value, Secret):
            raise ValueError(f"expected a Secret, got {type(value).__name__}")

    def spell(self, value: Secret) -> str:
        return "" if not value else "***"


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check_locale(value: str) -> None:
    if not _LOCALE_RE.match(value):
        raise ValueError(f"expected a locale like en-US, got {value!r}")


CONTAINER_NAME: Final = StorageName("container", _CONTAINER_RE, _NAME_RULES)
QUEUE_NAME: Final = StorageName("queue", _CONTAINER_RE, _NAME_RULES)  # same rules as containers
TABLE_NAME: Final = StorageName(
    "table", _TABLE_RE, "3-63 letters and digits, starting with a letter"
)


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class SettingSpec(Generic[T]):
    """One setting: its environment name, kind, one-line meaning and default.

    A required setting has no default; `if_missing` then says what to set it to.
    """

    env: str
    kind: Kind[T]
    meaning: str
    default: T | None
    if_missing: str = ""

    @property
    def required(self) -> bool:
        """True when the setting has no default and must be set."""
        return bool(self.if_missing)

    @property
    def default_text(self) -> str:
        """The default as written in the environment ("" for a required setting)."""
        return "" if self.required else self.kind.spell(self.default)  # type: ignore[arg-type]

    def read(self, env: Mapping[str, str]) -> T:
        """The value in `env`: the default when unset or blank; parsed, not yet checked."""
        raw = env.get(self.env)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if self.required:
                raise ConfigurationError(self.env, f"missing: {self.if_missing}")
            return self.default  # type: ignore[return-value]
        try:
            return self.kind.parse(text)
        except ValueError as exc:
            raise ConfigurationError(self.env, str(exc)) from None

    def check(self, value: T) -> None:
        """Raise ConfigurationError naming the setting when `value` is not allowed."""
        try:
            self.kind.check(value)
        except ValueError as exc:
            raise ConfigurationError(self.env, str(exc)) from None


@overload
def setting(env: str, kind: Kind[T], meaning: str, *, default: T) -> T: ...
@overload
def setting(env: str, kind: Kind[T], meaning: str, *, if_missing: str) -> T: ...
def setting(
    env: str, kind: Kind[Any], meaning: str, *, default: Any = None, if_missing: str = ""
) -> Any:
    """Declare a field of a `settings_class`: with a default, or required (`if_missing`)."""
    spec = SettingSpec(env, kind, meaning, default, if_missing)
    if if_missing:
        return dataclasses.field(metadata={_SPEC: spec})
    return dataclasses.field(default=default, metadata={_SPEC: spec})


@dataclass_transform(frozen_default=True, field_specifiers=(setting,))
def settings_class(cls: type[_C]) -> type[_C]:
    """Make `cls` a frozen dataclass whose fields are declared with `setting(...)`.

    `dataclass_transform` tells type checkers that `setting(...)` declares a field, which
    is required (a keyword of the constructor without default) unless it has a `default`.
    """
    return dataclass(frozen=True)(cls)


def declared_settings(cls: type) -> tuple[tuple[str, SettingSpec[Any]], ...]:
    """(field name, declaration) of every field of settings class `cls`, in order."""
    return tuple((f.name, f.metadata[_SPEC]) for f in dataclasses.fields(cls))
