"""App settings: read once from the environment (Functions app settings), validated up front.

Every setting is an environment variable; `func start` and `devhost` fill them from
`local.settings.json`. A missing or malformed value raises `ConfigurationError` naming the
setting and saying what is expected, at start-up, rather than a KeyError deep in a trigger.
Pure: no Azure imports, `from_env` takes any mapping so tests need no monkeypatching.

Each setting is declared once, as one field of `Settings`: ``setting(ENV_NAME, kind,
meaning, default=...)``. The kind (`Choice`, `Integer`, ... from `shared.setting_kinds`) says
how the value is spelled in the environment and which values are allowed; the API's
vocabularies and limits come from `shared.speech_models`, the output format names from
`shared.output_names`. `from_env` parses each variable with its kind (blank = the default);
every instance, however it was built (`from_env`, keywords, `dataclasses.replace`), is then
checked by `__post_init__`, so an invalid `Settings` cannot exist. `iter_settings()` exposes
the declarations (for the docs and the sample settings file).

Why a frozen dataclass and not pydantic(-settings): every setting needs its own spelling rules
and messages anyway (blank = default, case-insensitive choices, ``polling``, ``all``,
``off``, "expected ..., got ..." naming the setting), which is most of the code; importing
pydantic and building a model of this size adds about 50 ms (measured) to every cold start,
since the worker imports this module to index the app; and `BaseSettings` adds reading
`os.environ`, which `from_env(mapping)` does not want.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from typing import Any, Final

from shared.errors import ConfigurationError
from shared.output_names import OUTPUT_FORMATS
from shared.rate_limit import RATE_LIMIT_SCOPES, RateLimit
from shared.secret import NO_SECRET, Secret
from shared.setting_kinds import (
    CONTAINER_NAME,
    QUEUE_NAME,
    TABLE_NAME,
    Choice,
    Flag,
    Integer,
    Labels,
    Locale,
    Locales,
    NameSet,
    Number,
    Rate,
    Schedule,
    SecretText,
    SettingSpec,
    Text,
    Url,
    declared_settings,
    setting,
    settings_class,
)
from shared.speech_models import (
    API_VERSIONS,
    CANDIDATE_LOCALES_RANGE,
    LANGUAGE_ID_MODES,
    MAX_SPEAKERS_RANGE,
    PROFANITY_FILTER_MODES,
    PUNCTUATION_MODES,
    TIME_TO_LIVE_HOURS_RANGE,
)
from shared.storage_connection import (
    DATA_USE,
    SERVICES,
    check_blob_sdk_binding,
    parse_connection,
)

__all__ = [
    "BLOB_SOURCES",
    "FLEX_CONSUMPTION_SKU",
    "STORAGE_ACCESS_MODES",
    "Secret",  # re-exported: settings hold secrets, so their importers often need the type
    "SettingSpec",
    "Settings",
    "get_settings",
    "iter_settings",
    "platform_defaults",
    "runs_on_flex_consumption",
]

BLOB_SOURCES: Final = ("LogsAndContainerScan", "EventGrid")
FLEX_CONSUMPTION_SKU: Final = "FlexConsumption"  # WEBSITE_SKU on the Flex Consumption plan
# How the Speech service reads recordings: a read-only SAS per recording, or its own
# (system-assigned managed) identity with plain blob URLs (see shared.content_urls).
STORAGE_ACCESS_MODES: Final = ("sas", "identity")


@settings_class
class Settings:
    """All app settings: each field declares its environment variable, kind, meaning, default.

    Immutable and hashable (one runtime per settings). Built from the environment with
    `from_env`; built with keywords (tests), or copied with `dataclasses.replace`, it is
    checked the same way, raising `ConfigurationError` naming the setting.
    """

    speech_endpoint: str = setting(
        "SPEECH_ENDPOINT",
        Url(strip_slash=True),
        "Speech resource endpoint, e.g. https://<name>.cognitiveservices.azure.com.",
        if_missing="set it to the Speech resource endpoint, e.g. "
        "https://<name>.cognitiveservices.azure.com (or http://127.0.0.1:5050 locally)",
    )
    speech_key: Secret = setting(
        "SPEECH_KEY",
        SecretText(),
        "Speech resource key; empty = Microsoft Entra ID (AZURE_CLIENT_ID, else the storage "
        "connection's identity, else DefaultAzureCredential).",
        default=NO_SECRET,
    )
    speech_api_version: str = setting(
        "SPEECH_API_VERSION",
        Choice(API_VERSIONS),
        "Speech to text REST API version.",
        default=API_VERSIONS[0],  # the version whose request shapes speech_models builds
    )
    speech_locale: str = setting(
        "SPEECH_LOCALE", Locale(), "Locale of the recordings.", default="en-US"
    )
    speech_model: str = setting(
        "SPEECH_MODEL",
        Url(optional=True, droppable=("api-version",)),
        "self URL of a custom model; empty = base model.",
        default="",
    )
    storage_connection: str = setting(
        "STORAGE_CONNECTION",
        Text(),
        "Name of the storage connection for audio, transcripts, the job table and queue.",
        default="AzureWebJobsStorage",
    )
    input_container: str = setting(
        "INPUT_CONTAINER", CONTAINER_NAME, "Where recordings are dropped.", default="audio-input"
    )
    output_container: str = setting(
        "OUTPUT_CONTAINER",
        CONTAINER_NAME,
        "Where transcripts are written, under the recording's full name.",
        default="transcripts",
    )
    error_container: str = setting(
        "ERROR_CONTAINER",
        CONTAINER_NAME,
        "Where error reports are written (<name>.json).",
        default="transcription-errors",
    )
    jobs_table: str = setting(
        "JOBS_TABLE", TABLE_NAME, "Table of job records.", default="transcriptionjobs"
    )
    completion_queue: str = setting(
        "COMPLETION_QUEUE",
        QUEUE_NAME,
        "Queue that hands finished jobs to complete.",
        default="transcription-completions",
    )
    poll_schedule: str = setting(
        "POLL_SCHEDULE",
        Schedule(),
        "NCRONTAB (6 fields, UTC) of the poller.",
        default="0 * * * * *",
    )
    sweep_schedule: str = setting(
        "SWEEP_SCHEDULE",
        Schedule(),
        "NCRONTAB of the sweep (missed recordings, poison messages).",
        default="0 0 * * * *",
    )
    sweep_min_age_seconds: float = setting(
        "SWEEP_MIN_AGE_SECONDS",
        Number(0.0, 86_400.0),
        "The sweep leaves younger recordings to the blob trigger.",
        default=600.0,
    )
    blob_trigger_source: str = setting(
        "BLOB_TRIGGER_SOURCE",
        Choice(BLOB_SOURCES, aliases={"polling": "LogsAndContainerScan"}),
        "LogsAndContainerScan (polling) or EventGrid; unset: EventGrid on Flex Consumption "
        "(the only source it runs), LogsAndContainerScan elsewhere.",
        default="LogsAndContainerScan",  # off Flex; see platform_defaults
    )
    speech_storage_access: str = setting(
        "SPEECH_STORAGE_ACCESS",
        Choice(STORAGE_ACCESS_MODES),
        "How Speech reads recordings: sas (a read-only SAS per recording) or identity (plain "
        "URLs read with the Speech resource's managed identity; no SAS is ever created).",
        default="sas",
    )
    speech_results_connection: str = setting(
        "SPEECH_RESULTS_CONNECTION",
        Text(),
        "Name of the storage connection that reads result files whose URL has no SAS (the "
        "Speech resource's own storage, BYOS); empty = none.",
        default="",
    )
    sas_validity_hours: float = setting(
        "SAS_VALIDITY_HOURS",
        Number(0.25, 168.0),
        "Lifetime of the read-only SAS handed to Speech for one recording.",
        default=2.0,
    )
    time_to_live_hours: int = setting(
        "TIME_TO_LIVE_HOURS",
        Integer(*TIME_TO_LIVE_HOURS_RANGE),
        "How long the service keeps a job.",
        default=48,
    )
    word_timestamps: bool = setting(
        "WORD_TIMESTAMPS", Flag(), "Word-level timestamps.", default=True
    )
    punctuation_mode: str = setting(
        "PUNCTUATION_MODE",
        Choice(PUNCTUATION_MODES),
        "Punctuation mode of the service.",
        default="DictatedAndAutomatic",
    )
    profanity_filter_mode: str = setting(
        "PROFANITY_FILTER_MODE",
        Choice(PROFANITY_FILTER_MODES),
        "Profanity filter mode of the service.",
        default="Masked",
    )
    diarization_enabled: bool = setting(
        "DIARIZATION_ENABLED", Flag(), "Separate speakers in mono recordings.", default=False
    )
    diarization_max_speakers: int = setting(
        "DIARIZATION_MAX_SPEAKERS",
        Integer(*MAX_SPEAKERS_RANGE),
        "Most speakers diarization tells apart.",
        default=2,
    )
    language_candidates: tuple[str, ...] = setting(
        "LANGUAGE_CANDIDATES",
        Locales(*CANDIDATE_LOCALES_RANGE),
        "Comma-separated locales that turn on language identification.",
        default=(),
    )
    language_id_mode: str = setting(
        "LANGUAGE_ID_MODE",
        Choice(LANGUAGE_ID_MODES),
        "Language identification mode.",
        default="Continuous",
    )
    channel_labels: tuple[str, ...] = setting(
        "CHANNEL_LABELS",
        Labels(),
        "Speaker labels of stereo channels 0, 1, ...",
        default=("Agent", "Customer"),
    )
    output_formats: frozenset[str] = setting(
        "OUTPUT_FORMATS",
        NameSet(OUTPUT_FORMATS),
        "Products written for each recording: all, or a comma list.",
        default=OUTPUT_FORMATS,
    )
    max_audio_mb: int = setting(
        "MAX_AUDIO_MB",
        Integer(1, 1024),  # the service's limit is 1 GB
        "Larger recordings are rejected with an error report.",
        default=1024,
    )
    job_timeout_hours: float = setting(
        "JOB_TIMEOUT_HOURS",
        Number(0.01, 24 * 31),
        "A job unfinished after this is deleted on the service and reported as timed out.",
        default=30.0,
    )
    max_job_attempts: int = setting(
        "MAX_JOB_ATTEMPTS",
        Integer(1, 20),
        "Submissions per recording when the service fails a job for a transient reason.",
        default=3,
    )
    poison_redrive_limit: int = setting(
        "POISON_REDRIVE_LIMIT",
        Integer(0, 20),
        "Times a poison message is re-driven before the recording gets an error report.",
        default=3,
    )
    job_lease_seconds: float = setting(
        "JOB_LEASE_SECONDS",
        Number(5.0, 3600.0),
        "How long one run owns a job it is submitting or completing.",
        default=600.0,
    )
    poll_min_interval_seconds: float = setting(
        "POLL_MIN_INTERVAL_SECONDS",
        Number(0.0, 3600.0),
        "Never poll one job more often than this.",
        default=30.0,
    )
    poll_list_threshold: int = setting(
        "POLL_LIST_THRESHOLD",
        Integer(0, 10_000),
        "Above this many jobs due, poll by paging the list endpoint.",
        default=5,
    )
    batch_max_files: int = setting(
        "BATCH_MAX_FILES",
        Integer(1, 1000),  # the API takes at most 1,000 contentUrls per job
        "Most recordings in one Speech job when they arrive faster than they can be "
        "submitted singly; 1 = every recording is its own job.",
        # A batch's recordings are all written by one completion run after the whole job
        # ends, so the batch size is the size of that write burst: 50 halves it against 100
        # (N=1000 burst, web hook: p95 2.2 s instead of 3.6 s on the same machine) for three
        # Speech calls per 50 recordings instead of per 100 (0.06 a recording, still far
        # under the quota and under the 0.1 a recording of the Ingestion Client).
        default=50,
    )
    batch_window_seconds: float = setting(
        "BATCH_WINDOW_SECONDS",
        Number(0.5, 300.0),
        "Longest a recording waits for others to share its Speech job (only while "
        "recordings arrive faster than they can be submitted singly).",
        # Long enough to fill a batch at a few arrivals a second (a backlog waits on the
        # quota far longer than this anyway); a lone recording never waits at all.
        default=30.0,
    )
    speech_max_concurrency: int = setting(
        "SPEECH_MAX_CONCURRENCY",
        Integer(1, 64),
        "Concurrent Speech requests of one poll run.",
        default=8,
    )
    speech_timeout_seconds: float = setting(
        "SPEECH_TIMEOUT_SECONDS",
        Number(1.0, 600.0),
        "Timeout of each Speech request.",
        default=30.0,
    )
    speech_max_attempts: int = setting(
        "SPEECH_MAX_ATTEMPTS",
        Integer(1, 20),
        "Tries per Speech request on 429, 5xx and network errors.",
        default=5,
    )
    speech_rate_limit: RateLimit | None = setting(
        "SPEECH_RATE_LIMIT",
        Rate(),
        "Client-side limit on Speech calls, CALLS/SECONDS (0 or off: none); shared by every "
        "instance unless SPEECH_RATE_LIMIT_SCOPE=process.",
        default=RateLimit(90, 10.0),  # just under S0's 100 per 10 s
    )
    speech_rate_limit_scope: str = setting(
        "SPEECH_RATE_LIMIT_SCOPE",
        Choice(RATE_LIMIT_SCOPES),
        "Who shares SPEECH_RATE_LIMIT: app (every instance, through a row in "
        "SPEECH_QUOTA_TABLE) or process (each process on its own).",
        default="app",
    )
    speech_quota_table: str = setting(
        "SPEECH_QUOTA_TABLE",
        TABLE_NAME,
        "Table holding the Speech quota every instance shares (SPEECH_RATE_LIMIT_SCOPE=app).",
        default="speechquota",
    )
    webhook_secret: Secret = setting(
        "WEBHOOK_SECRET",
        SecretText(),
        "Secret of the Speech web hook; callbacks that do not match it are refused.",
        default=NO_SECRET,
    )

    def __post_init__(self) -> None:
        for name, spec in _DECLARED:
            spec.check(getattr(self, name))
        # Outputs or reports written into the input container would trigger jobs of their own.
        for env, value in (
            ("OUTPUT_CONTAINER", self.output_container),
            ("ERROR_CONTAINER", self.error_container),
        ):
            if value == self.input_container:
                raise ConfigurationError(
                    env,
                    f"must differ from INPUT_CONTAINER ({value!r}): files written there would "
                    "be picked up as new recordings",
                )

    @property
    def uses_key(self) -> bool:
        """True when Speech is called with a key; False = Microsoft Entra ID token."""
        return bool(self.speech_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        values = {name: spec.read(env) for name, spec in _DECLARED}
        values.update(platform_defaults(env))
        settings = cls(**values)
        _check_storage_connection(env, settings.storage_connection)
        if settings.speech_results_connection:
            _check_results_connection(env, settings.speech_results_connection)
        return settings


# (field name, declaration) of every setting, in declaration order.
_DECLARED: Final = declared_settings(Settings)


def iter_settings() -> Iterator[SettingSpec[Any]]:
    """Every setting's declaration (env name, kind, meaning, default), in declaration order."""
    return (spec for _, spec in _DECLARED)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, parsed once (the environment does not change under us)."""
    return Settings.from_env()


def runs_on_flex_consumption(env: Mapping[str, str]) -> bool:
    """True on the Flex Consumption plan: the platform sets ``WEBSITE_SKU=FlexConsumption``
    (the Functions host's own test, case-insensitive)."""
    return env.get("WEBSITE_SKU", "").strip().lower() == FLEX_CONSUMPTION_SKU.lower()


def platform_defaults(env: Mapping[str, str]) -> dict[str, Any]:
    """Defaults that depend on where the app runs, for settings left unset in `env`.

    ``BLOB_TRIGGER_SOURCE``: ``EventGrid`` on Flex Consumption, whose blob trigger runs only
    from Event Grid (a scanning trigger would never fire there and leave every recording to
    the hourly sweep); the declared default, ``LogsAndContainerScan``, elsewhere. A value
    that is set always wins.
    """
    if not env.get("BLOB_TRIGGER_SOURCE", "").strip() and runs_on_flex_consumption(env):
        return {"blob_trigger_source": "EventGrid"}
    return {}


def _check_storage_connection(env: Mapping[str, str], name: str) -> None:
    """The data connection must work for the app's clients, the host and the blob trigger.

    It serves blobs, a queue and a table (so each needs its own endpoint), and it is the
    ``submit`` trigger's connection, whose SDK-type binding reads it by itself: see
    `shared.storage_connection.check_blob_sdk_binding`.
    """
    connection = parse_connection(name, env)
    connection.require_services(SERVICES, used_for=DATA_USE)
    check_blob_sdk_binding(connection, env)


def _check_results_connection(env: Mapping[str, str], name: str) -> None:
    """SPEECH_RESULTS_CONNECTION must name a connection with a blob endpoint.

    Only result files are read through it: a connection string, or identity-based settings
    with ``<NAME>__blobServiceUri`` (or ``__serviceUri``); no queue or table endpoint.
    """
    try:
        connection = parse_connection(name, env)
    except ConfigurationError as exc:
        if exc.setting != name:
            raise  # a malformed property: its own setting is named
        raise ConfigurationError(
            "SPEECH_RESULTS_CONNECTION",
            f"names the connection {name!r}, which is not set: set {name} to a storage "
            f"connection string, or {name}__blobServiceUri to the results account's blob "
            f"endpoint (https://<account>.blob.core.windows.net; with {name}__credential="
            f"managedidentity and {name}__clientId for a user-assigned identity), or clear "
            "SPEECH_RESULTS_CONNECTION",
        ) from None
    if connection.uses_identity and connection.uri_for("blob") is None:
        connection.require_services(["blob"], used_for="reading Speech result files")
