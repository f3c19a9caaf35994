"""Validate request bodies like the service does, turning them into `JobSpec`s.

Every rejection is an `ApiError` (400) whose message says what is wrong and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from speech_emulator.errors import ApiError, invalid
from speech_emulator.jobs import JobSpec

MAX_CONTENT_URLS = 1000
MAX_CUSTOM_PROPERTIES = 10
TTL_HOURS_RANGE = (6, 744)
PUNCTUATION_MODES = ("None", "Dictated", "Automatic", "DictatedAndAutomatic")
PROFANITY_MODES = ("None", "Removed", "Tags", "Masked")
SUPPORTED_CHANNELS = (0, 1)
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})+$")

# Resolves a model `self` URL to a custom model id (None = a base model); raises ApiError.
ModelResolver = Callable[[str, str], str | None]


def _require_object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"'{name}' must be a JSON object.", "InvalidPayload", target=name)
    return value


def _required_text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(
            f"The '{name}' property is required and must be a non-empty string.",
            "InvalidPayload",
            target=name,
        )
    return value


def _bool(props: Mapping[str, Any], name: str) -> bool:
    value = props.get(name, False)
    if not isinstance(value, bool):
        raise invalid(f"'properties.{name}' must be true or false.", "InvalidParameterValue")
    return value


def _enum(props: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = props.get(name, default)
    if value not in allowed:
        raise invalid(
            f"'properties.{name}' must be one of {', '.join(allowed)}; got {value!r}.",
            "InvalidParameterValue",
        )
    return str(value)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _content(body: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    urls = body.get("contentUrls")
    container = body.get("contentContainerUrl")
    if body.get("dataset") is not None:
        raise invalid(
            "Transcribing a dataset is not supported by the local emulator; pass contentUrls.",
            "OnlyOneOfUrlsOrContainerOrDataset",
        )
    if (urls is not None) == (container is not None):
        raise invalid(
            "Exactly one of 'contentUrls' and 'contentContainerUrl' must be given.",
            "OnlyOneOfUrlsOrContainerOrDataset",
        )
    if container is not None:
        if not _is_http_url(container):
            raise invalid(
                "'contentContainerUrl' must be an absolute http(s) URL of a blob container "
                "with a SAS granting read and list.",
                "InvalidRecordingsUri",
            )
        return (), container
    if not isinstance(urls, list) or not urls:
        raise invalid("'contentUrls' must be a non-empty list of URLs.", "InvalidRecordingsUri")
    if len(urls) > MAX_CONTENT_URLS:
        raise invalid(
            f"At most {MAX_CONTENT_URLS} contentUrls are allowed per transcription; "
            f"got {len(urls)}. Split the inputs over several transcriptions.",
            "ExceededNumberOfRecordingsUris",
        )
    for index, url in enumerate(urls):
        if not _is_http_url(url):
            raise invalid(
                f"contentUrls[{index}] is not an absolute http(s) URL.", "InvalidRecordingsUri"
            )
    return tuple(urls), None


def _ttl(props: Mapping[str, Any]) -> int:
    value = props.get("timeToLiveHours")
    if value is None:
        raise invalid(
            "'properties.timeToLiveHours' is required (hours to keep the job after it "
            f"completes, {TTL_HOURS_RANGE[0]} to {TTL_HOURS_RANGE[1]}; 48 is a good choice).",
            "InvalidTimeToLive",
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("'properties.timeToLiveHours' must be an integer.", "InvalidTimeToLive")
    low, high = TTL_HOURS_RANGE
    if not low <= value <= high:
        raise invalid(
            f"'properties.timeToLiveHours' must be between {low} and {high}; got {value}.",
            "InvalidTimeToLive",
        )
    return value


def _channels(props: Mapping[str, Any]) -> tuple[int, ...]:
    value = props.get("channels", list(SUPPORTED_CHANNELS))
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(c, int) and not isinstance(c, bool) for c in value)
        and len(set(value)) == len(value)
        and all(c in SUPPORTED_CHANNELS for c in value)
    )
    if not ok:
        raise invalid(
            "'properties.channels' must be a non-empty list of distinct channel numbers, "
            f"each one of {list(SUPPORTED_CHANNELS)}; got {value!r}.",
            "InvalidChannels",
        )
    return tuple(sorted(value))


def _diarization(props: Mapping[str, Any]) -> tuple[bool, int | None, dict[str, Any] | None]:
    raw = props.get("diarization")
    legacy = props.get("diarizationEnabled")
    if raw is None:
        if legacy is not None and not isinstance(legacy, bool):
            raise invalid("'properties.diarizationEnabled' must be true or false.")
        return bool(legacy), (2 if legacy else None), None
    diarization = dict(_require_object(raw, "properties.diarization"))
    enabled = diarization.get("enabled", True if legacy is None else legacy)
    if not isinstance(enabled, bool):
        raise invalid("'properties.diarization.enabled' must be true or false.")
    max_speakers = diarization.get("maxSpeakers", 2)
    if isinstance(max_speakers, bool) or not isinstance(max_speakers, int):
        raise invalid("'properties.diarization.maxSpeakers' must be an integer from 2 to 35.")
    if not 2 <= max_speakers <= 35:
        raise invalid(
            f"'properties.diarization.maxSpeakers' must be from 2 to 35; got {max_speakers}.",
            "InvalidParameterValue",
        )
    return enabled, (max_speakers if enabled else None), diarization


def _custom_properties(body: Mapping[str, Any]) -> dict[str, str]:
    raw = body.get("customProperties")
    if raw is None:
        return {}
    props = _require_object(raw, "customProperties")
    if len(props) > MAX_CUSTOM_PROPERTIES:
        raise invalid(
            f"At most {MAX_CUSTOM_PROPERTIES} customProperties are allowed; got {len(props)}.",
            "InvalidParameterValue",
        )
    for key, value in props.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 256:
            raise invalid(
                f"customProperties[{key!r}]: keys must be at most 64 characters and values "
                "strings of at most 256 characters.",
                "InvalidParameterValue",
            )
    return dict(props)


def _language_identification(props: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = props.get("languageIdentification")
    if raw is None:
        return None
    lid = dict(_require_object(raw, "properties.languageIdentification"))
    candidates = lid.get("candidateLocales")
    if (
        not isinstance(candidates, list)
        or not 2 <= len(candidates) <= 10
        or not all(isinstance(c, str) and _LOCALE.match(c) for c in candidates)
    ):
        raise invalid(
            "'properties.languageIdentification.candidateLocales' must list 2 to 10 locales.",
            "InvalidLocale",
        )
    if lid.get("mode", "Single") not in ("Single", "Continuous"):
        raise invalid("'properties.languageIdentification.mode' must be Single or Continuous.")
    return lid


def parse_create(body: Any, resolve_model: ModelResolver) -> JobSpec:
    """Validate a ``POST /transcriptions:submit`` body."""
    if not isinstance(body, Mapping):
        raise invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    display_name = _required_text(body, "displayName")
    locale = _required_text(body, "locale")
    if not _LOCALE.match(locale):
        raise invalid(f"'locale' {locale!r} is not a locale such as en-US.", "InvalidLocale")
    if "properties" not in body:
        raise invalid(
            "The 'properties' object is required and must contain timeToLiveHours.",
            "InvalidPayload",
            target="properties",
        )
    props = _require_object(body["properties"], "properties")
    ttl = _ttl(props)
    urls, container = _content(body)
    model_self: str | None = None
    model_id: str | None = None
    if body.get("model") is not None:
        model = _require_object(body["model"], "model")
        model_self = model.get("self")
        if not isinstance(model_self, str) or not model_self:
            raise invalid("'model.self' must be the URL of a model.", "InvalidModelUri")
        model_id = resolve_model(model_self, locale)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid("'description' must be a string.")
    destination = props.get("destinationContainerUrl")
    if destination is not None and not _is_http_url(destination):
        raise invalid(
            "'properties.destinationContainerUrl' must be an absolute http(s) container URL "
            "with a SAS granting write.",
            "InvalidParameterValue",
        )
    enabled, max_speakers, diarization = _diarization(props)
    return JobSpec(
        display_name=display_name,
        locale=locale,
        ttl_hours=ttl,
        content_urls=urls,
        content_container_url=container,
        description=description,
        model_self=model_self,
        model_id=model_id,
        custom_properties=_custom_properties(body),
        channels=_channels(props),
        word_level_timestamps=_bool(props, "wordLevelTimestampsEnabled"),
        display_word_timestamps=_bool(props, "displayFormWordLevelTimestampsEnabled"),
        punctuation_mode=_enum(props, "punctuationMode", PUNCTUATION_MODES, "DictatedAndAutomatic"),
        profanity_mode=_enum(props, "profanityFilterMode", PROFANITY_MODES, "Masked"),
        diarization_enabled=enabled,
        max_speakers=max_speakers,
        diarization=diarization,
        language_identification=_language_identification(props),
        destination_container_url=destination,
    )


def model_error(model_self: str) -> ApiError:
    """The 400 for a model URL that names no known model."""
    return invalid(
        f"The model {model_self.split('?', maxsplit=1)[0]} does not exist. List the available "
        "models with GET /speechtotext/models (custom) and /speechtotext/models/base.",
        "InvalidModelUri",
    )
