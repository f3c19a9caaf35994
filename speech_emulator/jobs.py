"""Transcription jobs as the emulator keeps them (not the wire format: see ``entities``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Status(enum.StrEnum):
    """The API's status life cycle: NotStarted → Running → Succeeded | Failed."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        """True for Succeeded and Failed."""
        return self in (Status.SUCCEEDED, Status.FAILED)


class Fate(enum.StrEnum):
    """What fault injection decided for a job when it was created."""

    NORMAL = "normal"
    FAIL = "fail"  # ends Failed with the configured code
    VANISH = "vanish"  # disappears (404) once running


@dataclass(frozen=True)
class JobSpec:
    """A validated create request."""

    display_name: str
    locale: str
    ttl_hours: int
    content_urls: tuple[str, ...] = ()
    content_container_url: str | None = None
    description: str | None = None
    model_self: str | None = None  # as given by the client; None = base model
    model_id: str | None = None  # custom model id, None = base model
    custom_properties: dict[str, str] = field(default_factory=dict)
    channels: tuple[int, ...] = (0, 1)
    word_level_timestamps: bool = False
    display_word_timestamps: bool = False
    punctuation_mode: str = "DictatedAndAutomatic"
    profanity_mode: str = "Masked"
    diarization_enabled: bool = False
    max_speakers: int | None = None
    diarization: dict[str, Any] | None = None  # echoed back as given
    language_identification: dict[str, Any] | None = None
    destination_container_url: str | None = None


@dataclass
class JobFile:
    """A file of a finished job: a result (kind Transcription) or the report.

    The emulator serves ``content`` itself behind a signed contentUrl, unless the file was
    written to storage (a destination container, or bring-your-own-storage): then
    ``location`` is its plain blob URL, returned without SAS, and ``content`` is dropped.
    """

    id: str
    name: str
    kind: str  # "Transcription" | "TranscriptionReport"
    created: datetime
    content: bytes | None
    size: int
    input_index: int | None = None  # which input a result belongs to
    location: str | None = None


@dataclass
class Job:
    """A transcription job and its mutable state (guarded by the store's lock)."""

    id: str
    spec: JobSpec
    created: datetime
    fate: Fate = Fate.NORMAL
    status: Status = Status.NOT_STARTED
    last_action: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    error: tuple[str, str] | None = None  # (code, message) when Failed
    duration_ms: int | None = None
    files: list[JobFile] = field(default_factory=list)

    def expires_at(self) -> datetime | None:
        """When the service deletes the job: time-to-live counts from completion."""
        if self.finished is None:
            return None
        return self.finished + timedelta(hours=self.spec.ttl_hours)
