"""The completion queue's two batch messages, encoded and decoded purely.

Besides ``{"job_key": ...}`` (one job finished, `shared.complete`), the completion queue
carries ``{"batch_run": <sent at>}`` (form batches from the queued jobs now; sent with a
visibility delay of the batching window) and ``{"batch_key": ...}`` (a batch finished).
One queue and one function keep the host's bindings as they were.

`Send` is where a caller may route a completion message instead of the queue client: the
web hook hands its message to its function's queue output binding, because the host then
wakes its own completion listener at once (see `function_app.speech_webhook`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Final, TypeAlias

from shared.batches import is_batch_key

__all__ = [
    "BATCH_KEY",
    "BATCH_RUN_KEY",
    "BatchWork",
    "Send",
    "batch_completion_body",
    "parse_batch_message",
]

# Takes one completion message body (a queue output binding's list.append, for one).
Send: TypeAlias = Callable[[str], None]

BATCH_RUN_KEY: Final = "batch_run"
BATCH_KEY: Final = "batch_key"


class BatchWork(StrEnum):
    """What a batch message asks for."""

    RUN = "run"
    COMPLETE = "complete"


def batch_completion_body(key: str) -> str:
    """The message that hands finished batch `key` to completion."""
    return json.dumps({BATCH_KEY: key})


def parse_batch_message(body: str) -> tuple[BatchWork, str] | None:
    """(RUN, "") or (COMPLETE, batch key); None for any other message (a job's completion)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if BATCH_RUN_KEY in data:
        return BatchWork.RUN, ""
    key = data.get(BATCH_KEY)
    if isinstance(key, str) and is_batch_key(key):
        return BatchWork.COMPLETE, key
    return None
