"""App settings: read once from the environment (Functions app settings), validated up front.

Every setting is an environment variable; `func start` and `devhost` fill them from
`local.settings.json`. A missing or malformed value raises `ConfigurationError` naming the
setting and saying what is expected, at start-up, rather than a KeyError deep in a trigger.
Pure: no Azure imports, `from_env` takes any mapping so tests need no monkeypatching.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from shared.errors import ConfigurationError
from shared.rate_limit import RateLimit, parse_rate_limit
from shared.secret import NO_SECRET, Secret

__all__ = [
    "ALL_OUTPUT_FORMATS",
    "BLOB_SOURCES",
    "LANGUAGE_ID_MODES",
    "PROFANITY_MODES",
    "PUNCTUATION_MODES",
    "SUPPORTED_API_VERSIONS",
    "Secret",  # re-exported: settings hold secrets, so their importers often need the type
    "Settings",
    "get_settings",
]

SUPPORTED_API_VERSIONS: Final = ("2024-11-15", "2025-10-15")
PUNCTUATION_MODES: Final = ("None", "Dictated", "Automatic", "DictatedAndAutomatic")
PROFANITY_MODES: Final = ("None", "Removed", "Tags", "Masked")
LANGUAGE_ID_MODES: Final = ("Continuous", "Single")
BLOB_SOURCES: Final = ("LogsAndContainerScan", "EventGrid")
# Names accepted by OUTPUT_FORMATS (see shared/transcripts.py for what each one writes).
ALL_OUTPUT_FORMATS: Final = ("channels", "raw", "json", "txt", "vtt", "srt")

_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_QUEUE_RE = _CONTAINER_RE  # queues follow the same naming rules as containers
_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_LOCALE_RE = re.compile(r"^[a-z]{2,3}-[A-Z][A-Za-z]{1,3}$")
_NCRONTAB_FIELDS = 6


_NO_SECRET: Final = NO_SECRET
_DEFAULT_RATE_LIMIT: Final = RateLimit(90, 10.0)


@dataclass(frozen=True)
class Settings:
    """All app settings with their defaults. See README, "Settings", for each one."""

    speech_endpoint: str
    speech_key: Secret = _NO_SECRET
    speech_api_version: str = "2024-11-15"
    speech_locale: str = "en-US"
    speech_model: str = ""
    storage_connection: str = "AzureWebJobsStorage"
    input_container: str = "audio-input"
    output_container: str = "transcripts"
    error_container: str = "transcription-errors"
    jobs_table: str = "transcriptionjobs"
    completion_queue: str = "transcription-completions"
    poll_schedule: str = "0 * * * * *"
    sweep_schedule: str = "0 0 * * * *"
    sweep_min_age_seconds: float = 600.0
    blob_trigger_source: str = "LogsAndContainerScan"
    sas_validity_hours: float = 2.0
    time_to_live_hours: int = 48
    word_timestamps: bool = True
    punctuation_mode: str = "DictatedAndAutomatic"
    profanity_filter_mode: str = "Masked"
    diarization_enabled: bool = False
    diarization_max_speakers: int = 2
    language_candidates: tuple[str, ...] = ()
    language_id_mode: str = "Continuous"
    channel_labels: tuple[str, ...] = ("Agent", "Customer")
    output_formats: frozenset[str] = field(default_factory=lambda: frozenset(ALL_OUTPUT_FORMATS))
    max_audio_mb: int = 1024
    job_timeout_hours: float = 30.0
    max_job_attempts: int = 3
    poison_redrive_limit: int = 3
    job_lease_seconds: float = 600.0
    poll_min_interval_seconds: float = 30.0
    poll_list_threshold: int = 5
    speech_max_concurrency: int = 8
    speech_timeout_seconds: float = 30.0
    speech_max_attempts: int = 5
    # Client-side limit on Speech calls (None = off); just under S0's 100 per 10 s.
    speech_rate_limit: RateLimit | None = _DEFAULT_RATE_LIMIT
    webhook_secret: Secret = _NO_SECRET

    @property
    def uses_key(self) -> bool:
        """True when Speech is called with a key; False = Microsoft Entra ID token."""
        return bool(self.speech_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from `env` (default: the process environment)."""
        return _parse(os.environ if env is None else env)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, parsed once (the environment does not change under us)."""
    return Settings.from_env()


def _parse(env: Mapping[str, str]) -> Settings:
    r = _Reader(env)
    endpoint = r.url("SPEECH_ENDPOINT", required=True).rstrip("/")
    labels = r.csv("CHANNEL_LABELS", "Agent,Customer")
    if not labels:
        raise ConfigurationError(
            "CHANNEL_LABELS", "expected comma-separated labels, e.g. Agent,Customer"
        )
    candidates = r.csv("LANGUAGE_CANDIDATES", "")
    if candidates and not 2 <= len(candidates) <= 10:
        raise ConfigurationError(
            "LANGUAGE_CANDIDATES",
            f"expected 2 to 10 locales (the service's limit), got {len(candidates)}",
        )
    for loc in candidates:
        r.check_locale("LANGUAGE_CANDIDATES", loc)
    settings = Settings(
        speech_endpoint=endpoint,
        speech_key=Secret(r.text("SPEECH_KEY", "")),
        speech_api_version=r.choice("SPEECH_API_VERSION", SUPPORTED_API_VERSIONS, "2024-11-15"),
        speech_locale=r.check_locale("SPEECH_LOCALE", r.text("SPEECH_LOCALE", "en-US")),
        speech_model=r.model_url("SPEECH_MODEL"),
        storage_connection=r.text("STORAGE_CONNECTION", "AzureWebJobsStorage"),
        input_container=r.name("INPUT_CONTAINER", "audio-input", _CONTAINER_RE, "container"),
        output_container=r.name("OUTPUT_CONTAINER", "transcripts", _CONTAINER_RE, "container"),
        error_container=r.name(
            "ERROR_CONTAINER", "transcription-errors", _CONTAINER_RE, "container"
        ),
        jobs_table=r.name("JOBS_TABLE", "transcriptionjobs", _TABLE_RE, "table"),
        completion_queue=r.name(
            "COMPLETION_QUEUE", "transcription-completions", _QUEUE_RE, "queue"
        ),
        poll_schedule=r.schedule("POLL_SCHEDULE", "0 * * * * *"),
        sweep_schedule=r.schedule("SWEEP_SCHEDULE", "0 0 * * * *"),
        sweep_min_age_seconds=r.number("SWEEP_MIN_AGE_SECONDS", 600.0, 0.0, 86_400.0),
        blob_trigger_source=r.blob_source("BLOB_TRIGGER_SOURCE"),
        sas_validity_hours=r.number("SAS_VALIDITY_HOURS", 2.0, 0.25, 168.0),
        time_to_live_hours=int(r.number("TIME_TO_LIVE_HOURS", 48, 6, 744, integer=True)),
        word_timestamps=r.flag("WORD_TIMESTAMPS", True),
        punctuation_mode=r.choice("PUNCTUATION_MODE", PUNCTUATION_MODES, "DictatedAndAutomatic"),
        profanity_filter_mode=r.choice("PROFANITY_FILTER_MODE", PROFANITY_MODES, "Masked"),
        diarization_enabled=r.flag("DIARIZATION_ENABLED", False),
        diarization_max_speakers=int(r.number("DIARIZATION_MAX_SPEAKERS", 2, 2, 35, integer=True)),
        language_candidates=tuple(candidates),
        language_id_mode=r.choice("LANGUAGE_ID_MODE", LANGUAGE_ID_MODES, "Continuous"),
        channel_labels=tuple(labels),
        output_formats=r.formats("OUTPUT_FORMATS"),
        max_audio_mb=int(r.number("MAX_AUDIO_MB", 1024, 1, 1024, integer=True)),
        job_timeout_hours=r.number("JOB_TIMEOUT_HOURS", 30.0, 0.01, 24 * 31),
        max_job_attempts=int(r.number("MAX_JOB_ATTEMPTS", 3, 1, 20, integer=True)),
        poison_redrive_limit=int(r.number("POISON_REDRIVE_LIMIT", 3, 0, 20, integer=True)),
        job_lease_seconds=r.number("JOB_LEASE_SECONDS", 600.0, 5.0, 3600.0),
        poll_min_interval_seconds=r.number("POLL_MIN_INTERVAL_SECONDS", 30.0, 0.0, 3600.0),
        poll_list_threshold=int(r.number("POLL_LIST_THRESHOLD", 5, 0, 10_000, integer=True)),
        speech_max_concurrency=int(r.number("SPEECH_MAX_CONCURRENCY", 8, 1, 64, integer=True)),
        speech_timeout_seconds=r.number("SPEECH_TIMEOUT_SECONDS", 30.0, 1.0, 600.0),
        speech_max_attempts=int(r.number("SPEECH_MAX_ATTEMPTS", 5, 1, 20, integer=True)),
        speech_rate_limit=r.rate_limit("SPEECH_RATE_LIMIT", "90/10"),
        webhook_secret=Secret(r.text("WEBHOOK_SECRET", "")),
    )
    _check_storage_connection(env, settings.storage_connection)
    _check_containers_differ(settings)
    return settings


def _check_containers_differ(settings: Settings) -> None:
    """Outputs or reports written into the input container would trigger jobs of their own."""
    for setting, value in (
        ("OUTPUT_CONTAINER", settings.output_container),
        ("ERROR_CONTAINER", settings.error_container),
    ):
        if value == settings.input_container:
            raise ConfigurationError(
                setting,
                f"must differ from INPUT_CONTAINER ({value!r}): files written there would be "
                "picked up as new recordings",
            )


def _check_storage_connection(env: Mapping[str, str], name: str) -> None:
    """The storage connection must exist as a connection string or identity-based settings."""
    if env.get(name, "").strip():
        return
    if any(key.startswith(f"{name}__") and env[key].strip() for key in env):
        return
    raise ConfigurationError(
        name,
        "missing: set it to a storage connection string (UseDevelopmentStorage=true for Azurite), "
        f"or use identity-based settings {name}__blobServiceUri, {name}__queueServiceUri "
        f"and {name}__tableServiceUri",
    )


class _Reader:
    """Typed accessors that raise ConfigurationError with the setting's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name)
        return default if value is None or not value.strip() else value.strip()

    def url(self, name: str, *, required: bool, droppable_query: tuple[str, ...] = ()) -> str:
        value = self.text(name, "")
        if not value:
            if required:
                raise ConfigurationError(
                    name,
                    "missing: set it to the Speech resource endpoint, e.g. "
                    "https://<name>.cognitiveservices.azure.com (or http://127.0.0.1:5050 locally)",
                )
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(name, "expected an http(s) URL")
        if parts.query:
            keys = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
            if not keys or not keys <= set(droppable_query):
                raise ConfigurationError(name, "expected a URL without a query string")
            return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return value

    def model_url(self, name: str) -> str:
        """A model's `self` URL. The service writes it with ``?api-version=...``: that query
        is accepted and dropped (the app adds its own api-version to every call)."""
        return self.url(name, required=False, droppable_query=("api-version",))

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        for option in allowed:
            if value.lower() == option.lower():
                return option
        raise ConfigurationError(name, f"expected one of {', '.join(allowed)}; got {value!r}")

    def name(self, name: str, default: str, pattern: re.Pattern[str], kind: str) -> str:
        value = self.text(name, default)
        if not pattern.match(value):
            rules = (
                "3-63 letters and digits, starting with a letter"
                if kind == "table"
                else "3-63 lowercase letters, digits and single hyphens"
            )
            raise ConfigurationError(name, f"{value!r} is not a valid {kind} name ({rules})")
        return value

    def number(
        self,
        name: str,
        default: float,
        low: float,
        high: float,
        *,
        integer: bool = False,
    ) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(int(raw)) if integer else float(raw)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise ConfigurationError(name, f"expected {kind}, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigurationError(name, f"expected a value from {low:g} to {high:g}, got {raw}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name, "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(name, f"expected true or false, got {raw!r}")

    def rate_limit(self, name: str, default: str) -> RateLimit | None:
        try:
            return parse_rate_limit(self.text(name, default))
        except ValueError as exc:
            raise ConfigurationError(
                name, f"{exc} (the Speech S0 tier allows 100 per 10 s; F0 far fewer)"
            ) from None

    def csv(self, name: str, default: str) -> list[str]:
        return [part.strip() for part in self.text(name, default).split(",") if part.strip()]

    def check_locale(self, name: str, value: str) -> str:
        if not _LOCALE_RE.match(value):
            raise ConfigurationError(name, f"expected a locale like en-US, got {value!r}")
        return value

    def schedule(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if len(value.split()) != _NCRONTAB_FIELDS:
            raise ConfigurationError(
                name,
                "expected a 6-field NCRONTAB expression '{second} {minute} {hour} {day} {month} "
                f"{{day-of-week}}', e.g. '0 */1 * * * *'; got {value!r}",
            )
        return value

    def blob_source(self, name: str) -> str:
        value = self.text(name, "LogsAndContainerScan")
        aliases = {
            "polling": "LogsAndContainerScan",
            "logsandcontainerscan": "LogsAndContainerScan",
            "eventgrid": "EventGrid",
        }
        if value.lower() in aliases:
            return aliases[value.lower()]
        raise ConfigurationError(name, f"expected LogsAndContainerScan or EventGrid, got {value!r}")

    def formats(self, name: str) -> frozenset[str]:
        raw = self.csv(name, "all")
        if [f.lower() for f in raw] == ["all"]:
            return frozenset(ALL_OUTPUT_FORMATS)
        unknown = [f for f in raw if f.lower() not in ALL_OUTPUT_FORMATS]
        if unknown or not raw:
            raise ConfigurationError(
                name,
                f"expected 'all' or a comma list of {', '.join(ALL_OUTPUT_FORMATS)}; got {raw}",
            )
        return frozenset(f.lower() for f in raw)
