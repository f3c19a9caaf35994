"""Emulator settings: fixed at start-up (`Settings`) and changeable at run time (`Behaviour`).

`Behaviour` holds timing, capacity and faults; `GET/PATCH /_emulator/config` reads and
updates it with the same names as the command-line options (snake_case). The rate limit is
a `shared.rate_window.Rate` (``N/SECONDS``), the same form and parser the app's own
client-side limit uses.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.rate_window import Rate
from speech_emulator.engines.base import CustomModel

SUPPORTED_API_VERSIONS = ("2024-11-15", "2025-10-15")
STORAGE_ACCESS_MODES = ("sas", "identity")
DEFAULT_KEY = "local-dev-key"


@dataclass
class Behaviour:
    """Timing and faults; every field can be changed at run time through the admin API."""

    start_delay: float = 1.0  # seconds before a job's files may take a slot
    processing_factor: float = 0.1  # a file's time in its slot = factor x its audio duration ...
    processing_time: float | None = None  # ... unless a fixed time per file is set
    # Files transcribed at once by the whole resource (all jobs share these slots, FIFO).
    # 100 keeps a handful of concurrent jobs as independent as they were before slots existed.
    concurrent_files: int = 100
    rate_limit: Rate | None = None  # at most N Speech API calls per S seconds, else 429
    error_rate: float = 0.0  # share of Speech API calls answered 500/503
    fail_share: float = 0.0  # share of jobs that end Failed with fail_code
    fail_code: str = "InternalServerError"
    file_fail_share: float = 0.0  # share of input files that fail with file_fail_code
    file_fail_code: str = "InternalServerError"  # the report's errorKind for those
    vanish_share: float = 0.0  # share of jobs that disappear (404) before completing
    latency: float = 0.0  # seconds added to every Speech API answer
    sas_lifetime_minutes: int = 720  # default lifetime of files' contentUrl tokens
    poll_retry_after: int = 1  # Retry-After seconds on GET of an unfinished job

    def to_json(self) -> dict[str, Any]:
        """The admin API's view (rate limit as ``"N/SECONDS"`` or null)."""
        out = dataclasses.asdict(self)
        out["rate_limit"] = str(self.rate_limit) if self.rate_limit else None
        return out

    def updated(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with ``changes`` applied; ValueError names the bad key or value."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(names)}")
        values: dict[str, Any] = {}
        for key, raw in changes.items():
            values[key] = _coerce(key, raw)
        new = dataclasses.replace(self, **values)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise ValueError when a value is out of range."""
        for share in ("error_rate", "fail_share", "file_fail_share", "vanish_share"):
            if not 0.0 <= getattr(self, share) <= 1.0:
                raise ValueError(f"{share} must be between 0 and 1")
        for name in ("start_delay", "processing_factor", "latency"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.processing_time is not None and self.processing_time < 0:
            raise ValueError("processing_time must not be negative")
        if self.sas_lifetime_minutes < 1:
            raise ValueError("sas_lifetime_minutes must be at least 1")
        if self.poll_retry_after < 0:
            raise ValueError("poll_retry_after must not be negative")
        if not self.fail_code:
            raise ValueError("fail_code must not be empty")
        if not self.file_fail_code:
            raise ValueError("file_fail_code must not be empty")
        if self.concurrent_files < 1:
            raise ValueError("concurrent_files must be at least 1")


def _coerce(key: str, raw: Any) -> Any:
    if key == "rate_limit":
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise ValueError("rate_limit must be a string N/SECONDS (e.g. '100/10') or null")
        return Rate.parse(raw)
    if key in ("fail_code", "file_fail_code"):
        if not isinstance(raw, str):
            raise ValueError(f"{key} must be a string")
        return raw
    if key == "processing_time" and raw is None:
        return None
    if key in ("sas_lifetime_minutes", "poll_retry_after", "concurrent_files"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"{key} must be an integer")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{key} must be a number")
    return float(raw)


class BehaviourBox:
    """The current `Behaviour`, swapped atomically so readers never see half an update."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._lock = threading.Lock()
        self._initial = behaviour
        self._current = behaviour

    def get(self) -> Behaviour:
        """The current behaviour (an immutable-by-convention snapshot)."""
        with self._lock:
            return self._current

    def update(self, changes: Mapping[str, Any]) -> Behaviour:
        """Apply ``changes`` (admin PATCH); raises ValueError and changes nothing when bad."""
        with self._lock:
            self._current = self._current.updated(changes)
            return self._current

    def reset(self) -> None:
        """Back to the start-up behaviour."""
        with self._lock:
            self._current = self._initial


@dataclass(frozen=True)
class Settings:
    """Start-up settings of one emulator process."""

    host: str = "127.0.0.1"
    port: int = 5050
    key: str = DEFAULT_KEY
    accept_bearer: bool = False
    engine: str = "sphinx"
    custom_models: tuple[CustomModel, ...] = ()
    workers: int = 2
    public_url: str | None = None  # base for self/contentUrl links; default: the listen URL
    seed: int | None = None  # fault dice; fixed seed = reproducible faults
    log_level: str = "warning"
    # How the resource reads Blob storage: "sas" (by the URL alone: SAS or public) or
    # "identity" (its managed identity, for the accounts below; those refuse SAS).
    storage_access: str = "sas"
    storage_connection_string: str | None = None  # the account its identity may read
    byos_connection_string: str | None = None  # bring-your-own-storage: results go here
    behaviour: Behaviour = field(default_factory=Behaviour)
