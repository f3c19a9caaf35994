"""The parts of host.json that devhost honours, with the Functions host's defaults."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?$")


class HostConfigError(ValueError):
    """host.json is malformed; the message names the property."""


def parse_timespan(value: str, *, prop: str) -> float:
    """Seconds in a .NET TimeSpan string such as `00:00:30` or `1.02:00:00`."""
    match = _TIMESPAN.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise HostConfigError(
            f"host.json '{prop}' is {value!r}; expected a TimeSpan like \"00:00:30\" (hh:mm:ss)."
        )
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues`: how queue triggers fetch, retry and decode messages."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: batch_size / 2, as the host computes it
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"

    @property
    def refill_threshold(self) -> int:
        """Fetch a new batch when fewer than this many messages are still running."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return max(1, self.batch_size // 2)


@dataclass(frozen=True)
class BlobOptions:
    """`extensions.blobs`: blob trigger parallelism and poison threshold."""

    max_degree_of_parallelism: int = 8
    poison_blob_threshold: int = 5


@dataclass(frozen=True)
class HostConfig:
    """The host.json settings devhost uses."""

    queues: QueueOptions = QueueOptions()
    blobs: BlobOptions = BlobOptions()
    function_timeout: float | None = 300.0
    http_route_prefix: str = "api"


def _int(section: dict[str, Any], key: str, default: int, prefix: str, minimum: int = 1) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise HostConfigError(
            f"host.json '{prefix}.{key}' is {value!r}; expected an integer >= {minimum}."
        )
    return value


def _section(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = document
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    if not isinstance(node, dict):
        raise HostConfigError(f"host.json '{'.'.join(keys)}' must be an object.")
    return node


def parse_host_config(document: dict[str, Any]) -> HostConfig:
    """Build a HostConfig from a parsed host.json, validating what devhost uses."""
    q = _section(document, "extensions", "queues")
    encoding = str(q.get("messageEncoding", "base64")).lower()
    if encoding not in {"base64", "none"}:
        raise HostConfigError(
            f"host.json 'extensions.queues.messageEncoding' is {encoding!r}; use base64 or none."
        )
    threshold = q.get("newBatchThreshold")
    queues = QueueOptions(
        batch_size=_int(q, "batchSize", 16, "extensions.queues"),
        new_batch_threshold=None
        if threshold is None
        else _int(q, "newBatchThreshold", 0, "extensions.queues", 0),
        max_dequeue_count=_int(q, "maxDequeueCount", 5, "extensions.queues"),
        visibility_timeout=parse_timespan(
            q.get("visibilityTimeout", "00:00:00"), prop="extensions.queues.visibilityTimeout"
        ),
        max_polling_interval=parse_timespan(
            q.get("maxPollingInterval", "00:01:00"), prop="extensions.queues.maxPollingInterval"
        ),
        message_encoding=encoding,
    )
    b = _section(document, "extensions", "blobs")
    blobs = BlobOptions(
        max_degree_of_parallelism=_int(b, "maxDegreeOfParallelism", 8, "extensions.blobs"),
        poison_blob_threshold=_int(b, "poisonBlobThreshold", 5, "extensions.blobs"),
    )
    timeout_value = document.get("functionTimeout")
    timeout: float | None = 300.0
    if timeout_value == "-1":
        timeout = None
    elif timeout_value is not None:
        timeout = parse_timespan(timeout_value, prop="functionTimeout")
    prefix = _section(document, "extensions", "http").get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise HostConfigError("host.json 'extensions.http.routePrefix' must be a string.")
    return HostConfig(
        queues=queues, blobs=blobs, function_timeout=timeout, http_route_prefix=prefix.strip("/")
    )


def load_host_config(path: Path) -> HostConfig:
    """Read host.json at `path`; a missing file means the host's defaults."""
    if not path.exists():
        return HostConfig()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise HostConfigError(f"{path} must hold a JSON object.")
    return parse_host_config(document)
