"""Poison messages the sweep re-drives: what they say, and how many times they were re-driven.

Two kinds land in poison queues:

* ``<COMPLETION_QUEUE>-poison``: a completion message (``{"job_key": ...}``) that failed
  ``maxDequeueCount`` times. The sweep sends it back to the completion queue with a
  ``redrives`` counter in the body (the completion function reads only ``job_key``).
* ``webjobs-blobtrigger-poison``: the host's message for a blob whose trigger failed
  ``poisonBlobThreshold`` times: ``{"Type": "BlobTrigger", "FunctionId": ...,
  "ContainerName": ..., "BlobName": ..., "ETag": "\\"0x...\\""}``. The sweep runs the submit
  path for that blob itself and, when that fails too, writes ``AppRedrives`` into the
  message so the count survives to the next run.

Pure: bodies in, parsed values or new bodies out. Bodies are base64 (the host's encoding),
but plain JSON is accepted too, so a message an operator moved by hand is not lost.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final

from shared.jobs import KEY_PREFIX

__all__ = [
    "BLOB_TRIGGER_POISON_QUEUE",
    "BlobTriggerPoison",
    "CompletionPoison",
    "PoisonMessageError",
    "completion_body",
    "decode_body",
    "parse_blob_trigger_poison",
    "parse_completion_poison",
]

BLOB_TRIGGER_POISON_QUEUE: Final = "webjobs-blobtrigger-poison"
_REDRIVES: Final = "redrives"
_APP_REDRIVES: Final = "AppRedrives"


class PoisonMessageError(ValueError):
    """A poison message the sweep cannot understand (it is logged and removed)."""


def decode_body(raw: str) -> Any:
    """The JSON a raw queue message holds: base64-encoded JSON, or plain JSON."""
    text = raw.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError) as exc:
            raise PoisonMessageError(f"neither JSON nor base64 JSON: {raw[:80]!r}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PoisonMessageError(f"not JSON: {text[:80]!r}") from exc


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


@dataclass(frozen=True)
class CompletionPoison:
    """A completion message from the poison queue: which job, re-driven how often already."""

    job_key: str
    redrives: int


def parse_completion_poison(raw: str) -> CompletionPoison:
    """Parse a ``<COMPLETION_QUEUE>-poison`` message; raises PoisonMessageError."""
    data = decode_body(raw)
    key = data.get("job_key") if isinstance(data, dict) else None
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
        raise PoisonMessageError(f"no job_key in {raw[:80]!r}")
    return CompletionPoison(job_key=key, redrives=_count(data.get(_REDRIVES)))


def completion_body(job_key: str, redrives: int) -> str:
    """The completion message (JSON text; the queue client base64-encodes it) for a redrive."""
    return json.dumps({"job_key": job_key, _REDRIVES: redrives})


@dataclass(frozen=True)
class BlobTriggerPoison:
    """The host's poison message for one blob version, plus the sweep's redrive count."""

    function_id: str
    container: str
    name: str
    etag: str
    redrives: int
    body: dict[str, Any]

    def with_redrives(self, redrives: int) -> str:
        """The message body (base64 JSON, like the host's) with the count updated."""
        data = {**self.body, _APP_REDRIVES: redrives}
        return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")


def parse_blob_trigger_poison(raw: str) -> BlobTriggerPoison:
    """Parse a ``webjobs-blobtrigger-poison`` message; raises PoisonMessageError."""
    data = decode_body(raw)
    if not isinstance(data, dict):
        raise PoisonMessageError(f"not a JSON object: {raw[:80]!r}")
    container, name = data.get("ContainerName"), data.get("BlobName")
    if not isinstance(container, str) or not isinstance(name, str) or not container or not name:
        raise PoisonMessageError(f"no ContainerName/BlobName in {raw[:80]!r}")
    etag = data.get("ETag")
    return BlobTriggerPoison(
        function_id=str(data.get("FunctionId", "")),
        container=container,
        name=name,
        etag=etag if isinstance(etag, str) else "",
        redrives=_count(data.get(_APP_REDRIVES)),
        body=data,
    )
