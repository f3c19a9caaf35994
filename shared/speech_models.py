"""Wire shapes of the Speech batch transcription API (2024-11-15), decoded and encoded purely.

No I/O and no httpx here: `speech_client.py` moves bytes, this module turns them into typed
values (tolerantly: unknown fields are ignored, missing optional ones become None) and
builds the submit body with the service's invariants checked before a request is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from shared.errors import redact_url, redact_urls

__all__ = [
    "API_VERSIONS",
    "CANDIDATE_LOCALES_RANGE",
    "LANGUAGE_ID_MODES",
    "MAX_CONTENT_URLS",
    "MAX_SPEAKERS_RANGE",
    "PROFANITY_FILTER_MODES",
    "PUNCTUATION_MODES",
    "TIME_TO_LIVE_HOURS_RANGE",
    "Transcription",
    "TranscriptionFile",
    "TranscriptionStatus",
    "build_submit_body",
    "transcription_id_from_url",
]

# The API's vocabularies and limits, in one place: the submit body below is checked against
# them and `shared.settings` declares the app's settings with them. Ranges are inclusive.
API_VERSIONS: Final = ("2024-11-15", "2025-10-15")
PUNCTUATION_MODES: Final = ("None", "Dictated", "Automatic", "DictatedAndAutomatic")
PROFANITY_FILTER_MODES: Final = ("None", "Removed", "Tags", "Masked")
LANGUAGE_ID_MODES: Final = ("Continuous", "Single")
TIME_TO_LIVE_HOURS_RANGE: Final = (6, 744)  # properties.timeToLiveHours: 6 hours to 31 days
MAX_SPEAKERS_RANGE: Final = (2, 35)  # properties.diarization.maxSpeakers
MAX_CONTENT_URLS: Final = 1000  # contentUrls of one transcription
CANDIDATE_LOCALES_RANGE: Final = (2, 10)  # languageIdentification.candidateLocales, how many


class TranscriptionStatus(StrEnum):
    """A transcription's lifecycle on the service; there is no cancelled state."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        """True once the service will not change the status any more."""
        return self in (TranscriptionStatus.SUCCEEDED, TranscriptionStatus.FAILED)


def transcription_id_from_url(url: str) -> str:
    """The transcription id (last path segment) of a `self`/`Location` URL.

    Query and fragment are ignored, so `…/transcriptions/<id>?api-version=…` works.
    Raises ValueError when the URL has no path segment to take.
    """
    if not isinstance(url, str):
        raise ValueError(f"expected a transcription URL string, got {type(url).__name__}")
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        raise ValueError("not a valid transcription URL") from None
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not segment or segment == "transcriptions":
        raise ValueError(f"no transcription id in URL {redact_url(url)!r}")
    return segment


def _parse_time(value: Any) -> datetime | None:
    """ISO 8601 timestamps as the service writes them ('Z' suffix); None when absent/garbled."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Transcription:
    """A batch transcription job as the service reports it.

    `self_url` is kept without its query string (the service appends `api-version`);
    `raw` is the full decoded JSON for anything this class does not model.
    """

    id: str
    self_url: str
    display_name: str
    status: TranscriptionStatus
    created: datetime | None
    last_action: datetime | None
    error_code: str | None
    error_message: str | None
    duration_ms: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transcription:
        """Decode a Transcription entity; raises ValueError naming what is missing or wrong."""
        data = _require_mapping(data, "a transcription")
        self_url = data.get("self")
        if not isinstance(self_url, str) or not self_url:
            raise ValueError("transcription JSON has no 'self' URL")
        raw_status = data.get("status")
        try:
            status = TranscriptionStatus(str(raw_status))
        except ValueError:
            allowed = ", ".join(s.value for s in TranscriptionStatus)
            raise ValueError(
                f"transcription JSON has status {raw_status!r}; expected one of {allowed}"
            ) from None
        properties = _mapping(data.get("properties"))
        error = _mapping(properties.get("error"))
        return cls(
            id=transcription_id_from_url(self_url),
            self_url=redact_url(self_url),
            display_name=_optional_str(data.get("displayName")) or "",
            status=status,
            created=_parse_time(data.get("createdDateTime")),
            last_action=_parse_time(data.get("lastActionDateTime")),
            error_code=_optional_str(error.get("code")),
            # A service message may quote the input's URL, SAS and all: keep none of it.
            error_message=_redacted(_optional_str(error.get("message"))),
            duration_ms=_optional_int(properties.get("durationMilliseconds")),
            raw=data,
        )


def _redacted(text: str | None) -> str | None:
    return redact_urls(text) if text else text


@dataclass(frozen=True)
class TranscriptionFile:
    """One file of a finished job: a result (`kind` Transcription) or the job's report.

    `content_url` is a time-limited SAS URL: a secret. Pass it to `SpeechClient.download`;
    never log or store it (use `shared.errors.redact_url`). The repr hides it.
    """

    kind: str
    name: str
    content_url: str = field(repr=False)
    size: int | None
    self_url: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TranscriptionFile:
        """Decode a File entity; raises ValueError when `kind` or `links.contentUrl` is missing."""
        data = _require_mapping(data, "a transcription file")
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ValueError("transcription file JSON has no 'kind'")
        content_url = _mapping(data.get("links")).get("contentUrl")
        if not isinstance(content_url, str) or not content_url:
            raise ValueError(f"transcription file of kind {kind!r} has no links.contentUrl")
        return cls(
            kind=kind,
            name=_optional_str(data.get("name")) or "",
            content_url=content_url,
            size=_optional_int(_mapping(data.get("properties")).get("size")),
            self_url=redact_url(_optional_str(data.get("self")) or ""),
        )


def build_submit_body(
    *,
    display_name: str,
    content_url: str = "",
    content_urls: Sequence[str] = (),
    locale: str,
    channels: Sequence[int],
    time_to_live_hours: int,
    model_url: str = "",
    word_timestamps: bool = True,
    punctuation_mode: str = "DictatedAndAutomatic",
    profanity_filter_mode: str = "Masked",
    diarization_max_speakers: int | None = None,
    language_candidates: Sequence[str] = (),
    language_id_mode: str = "Continuous",
    custom_properties: Mapping[str, str] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The JSON body of `POST /transcriptions:submit` (2024-11-15 shape).

    One recording (`content_url`) or several sharing the same properties (`content_urls`,
    at most `MAX_CONTENT_URLS`, no repeats: results are matched back to recordings by URL).

    `description` tags the job as this deployment's (see `shared.jobs.deployment_tag`).

    `diarization_max_speakers` turns diarization on; the caller decides, and it is only
    valid for a single channel (the service fails stereo + diarization as invalid data).
    Raises ValueError, before any request is made, when an invariant of the API is broken.
    """
    if not display_name:
        raise ValueError("display_name must not be empty (it is the job's idempotency key)")
    urls = _content_urls(content_url, content_urls)
    if not locale:
        raise ValueError("locale must not be empty, e.g. en-US")
    channel_list = list(channels)
    if not channel_list or any(
        isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in channel_list
    ):
        raise ValueError(f"channels must be a non-empty list of channel numbers, got {channels!r}")
    if len(set(channel_list)) != len(channel_list):
        raise ValueError(f"channels must not repeat, got {channel_list!r}")
    low, high = TIME_TO_LIVE_HOURS_RANGE
    if not low <= time_to_live_hours <= high:
        raise ValueError(f"time_to_live_hours must be {low}..{high}, got {time_to_live_hours}")
    if punctuation_mode not in PUNCTUATION_MODES:
        raise ValueError(f"punctuation_mode must be one of {PUNCTUATION_MODES}")
    if profanity_filter_mode not in PROFANITY_FILTER_MODES:
        raise ValueError(f"profanity_filter_mode must be one of {PROFANITY_FILTER_MODES}")

    properties: dict[str, Any] = {
        "channels": channel_list,
        "timeToLiveHours": time_to_live_hours,
        "wordLevelTimestampsEnabled": word_timestamps,
        "displayFormWordLevelTimestampsEnabled": word_timestamps,
        "punctuationMode": punctuation_mode,
        "profanityFilterMode": profanity_filter_mode,
    }
    if diarization_max_speakers is not None:
        if len(channel_list) != 1:
            raise ValueError(
                "diarization is only valid for mono audio (one channel); "
                f"got channels {channel_list!r}"
            )
        low, high = MAX_SPEAKERS_RANGE
        if not low <= diarization_max_speakers <= high:
            raise ValueError(
                f"diarization_max_speakers must be {low}..{high}, got {diarization_max_speakers}"
            )
        properties["diarization"] = {"enabled": True, "maxSpeakers": diarization_max_speakers}
    candidates = list(language_candidates)
    if candidates:
        low, high = CANDIDATE_LOCALES_RANGE
        if not low <= len(candidates) <= high:
            raise ValueError(
                f"language_candidates must hold {low}..{high} locales, got {len(candidates)}"
            )
        if language_id_mode not in LANGUAGE_ID_MODES:
            raise ValueError(f"language_id_mode must be one of {LANGUAGE_ID_MODES}")
        properties["languageIdentification"] = {
            "candidateLocales": candidates,
            "mode": language_id_mode,
        }

    body: dict[str, Any] = {
        "displayName": display_name,
        "locale": locale,
        "contentUrls": urls,
        "properties": properties,
    }
    if description:
        body["description"] = description
    if model_url:
        body["model"] = {"self": model_url}
    if custom_properties:
        if len(custom_properties) > 10:
            raise ValueError("custom_properties allows at most 10 entries (service limit)")
        body["customProperties"] = dict(custom_properties)
    return body


def _content_urls(content_url: str, content_urls: Sequence[str]) -> list[str]:
    """The body's ``contentUrls``: exactly one of the two arguments, checked."""
    if content_url and content_urls:
        raise ValueError("give content_url or content_urls, not both")
    urls = [content_url] if content_url else list(content_urls)
    if not urls or any(not isinstance(u, str) or not u for u in urls):
        raise ValueError("content_url(s) must not be empty")
    if len(urls) > MAX_CONTENT_URLS:
        raise ValueError(f"at most {MAX_CONTENT_URLS} content URLs per job, got {len(urls)}")
    if len({u.split("?", 1)[0] for u in urls}) != len(urls):
        # Results name their source URL (without the SAS): a repeat could not be told apart.
        raise ValueError("content_urls must not name the same recording twice")
    return urls
