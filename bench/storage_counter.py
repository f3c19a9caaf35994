"""Count the storage requests a process makes, at the HTTP transport of the Azure SDKs.

Why here: every Azure Storage SDK call (blob, queue, table) ends in one
``RequestsTransport.send`` per HTTP request actually sent, retries included, so wrapping
that one method counts real storage transactions without touching the app or the host.
Each request is attributed to the *app* when a frame of the app's code (``shared/`` or
``function_app.py``) is on the stack, else to the *host* (devhost's trigger machinery:
container scans, receipts, queue polling). The moment each ``…/channel_0.json`` upload
returns is kept too: the precise "transcript written" time for the overhead measurement
(a blob's Creation-Time is served with one-second resolution only).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import RequestsTransport

MARKER_SUFFIX = "/channel_0.json"


def service_ports(connection_string: str) -> dict[int, str]:
    """Map the blob/queue/table endpoint ports of a connection string to service names."""
    ports: dict[int, str] = {}
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        service = {"BlobEndpoint": "blob", "QueueEndpoint": "queue", "TableEndpoint": "table"}.get(
            key.strip()
        )
        port = urlsplit(value.strip()).port if service else None
        if service and port:
            ports[port] = service
    return ports


def resource_of(path: str) -> str:
    """The container, queue or table a request path addresses (after the account segment)."""
    segments = [s for s in unquote(path).split("/") if s]
    if len(segments) < 2:
        return ""
    name = segments[1]
    return name.split("(", 1)[0]  # table paths look like /account/Table(PartitionKey=...)


def is_app_frame(filename: str, app_root: str) -> bool:
    """True for a frame of the app's own code."""
    root = Path(app_root)
    return filename.startswith(f"{root / 'shared'}{os.sep}") or filename == str(
        root / "function_app.py"
    )


class StorageCounter:
    """Thread-safe tallies of storage requests; written as JSON by `dump`."""

    def __init__(self, app_root: str, ports: dict[int, str]) -> None:
        self._app_root = app_root
        self._ports = ports
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._markers: dict[str, float] = {}
        self._app_files: dict[str, bool] = {}

    def _caller(self, frame: FrameType | None) -> str:
        # Every request walks its stack: remember each file's verdict (a few hundred files)
        # so counting costs the app process next to nothing.
        known = self._app_files
        while frame is not None:
            filename = frame.f_code.co_filename
            verdict = known.get(filename)
            if verdict is None:
                verdict = known[filename] = is_app_frame(filename, self._app_root)
            if verdict:
                return "app"
            frame = frame.f_back
        return "host"

    def record(self, method: str, url: str, status: int | None, frame: FrameType | None) -> None:
        """Count one request; remember when a channel_0.json upload succeeded (a single PUT,
        or the block list commit of a chunked upload)."""
        parts = urlsplit(url)
        service = self._ports.get(parts.port or 0, "other")
        key = f"{self._caller(frame)} {service} {method} {resource_of(parts.path)}"
        now = time.time()
        with self._lock:
            self._counts[key] += 1
            if (
                method == "PUT"
                and service == "blob"
                and status is not None
                and 200 <= status < 300
                and unquote(parts.path).endswith(MARKER_SUFFIX)
                and ("comp=" not in parts.query or "comp=blocklist" in parts.query)
            ):
                name = unquote(parts.path).split("/", 3)[-1]  # /account/container/<name>
                self._markers.setdefault(name, now)

    def snapshot(self) -> dict[str, Any]:
        """The tallies (`"caller service METHOD resource": n`) and the marker write times."""
        with self._lock:
            return {"requests": dict(self._counts), "channel_0_written": dict(self._markers)}

    def dump(self, path: Path) -> None:
        """Write the snapshot atomically (a reader never sees half a file)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        tmp.replace(path)


def install(counter: StorageCounter) -> None:
    """Wrap `RequestsTransport.send` so every storage request is counted."""
    original = RequestsTransport.send

    def send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        status: int | None = None
        try:
            response = original(self, request, **kwargs)
            status = response.status_code
            return response
        finally:
            counter.record(request.method, request.url, status, sys._getframe(1))

    RequestsTransport.send = send
