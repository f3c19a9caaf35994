"""Queue trigger with the host's semantics.

- Bodies are decoded per host.json `messageEncoding` (base64 by default); a message that
  cannot be decoded goes straight to `<queue>-poison`, as the host does.
- A message is invisible while its function runs (a lease renewed in the background, so a
  crashed devhost's messages come back after `lease_seconds`); on failure it becomes visible
  again after host.json `visibilityTimeout`; the service counts dequeues.
- After `maxDequeueCount` failed tries it is copied (same raw body) to `<queue>-poison` and
  deleted from the source queue.
- Polling backs off exponentially up to `maxPollingInterval` while the queue is empty and
  fetches the next batch as soon as fewer than `newBatchThreshold` messages are running.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueClient, QueueMessage

from devhost.host_config import QueueOptions
from devhost.invoker import Invoker, Outcome

log = logging.getLogger("devhost")

MIN_POLLING_INTERVAL = 0.1


class MessageDecodeError(ValueError):
    """A queue message body is not valid for the configured messageEncoding."""


def decode_body(raw: str, encoding: str) -> bytes:
    """The message body as bytes: base64-decoded (strictly) or UTF-8 encoded for `none`."""
    if encoding == "none":
        return raw.encode("utf-8")
    try:
        return base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MessageDecodeError(
            "the message is not valid base64 (host.json extensions.queues.messageEncoding is "
            "'base64'). Send it base64-encoded, e.g. with azure-storage-queue's "
            "TextBase64EncodePolicy"
        ) from exc


def next_poll_delay(current: float, found_messages: bool, maximum: float) -> float:
    """Exponential backoff while empty, reset to the minimum when messages arrive."""
    if found_messages:
        return MIN_POLLING_INTERVAL
    return min(maximum, max(MIN_POLLING_INTERVAL, current * 2))


@dataclass
class _Lease:
    """A running message's pop receipt; `lock` orders renewals against delete/update."""

    pop_receipt: str
    renewed_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    settled: bool = False


class QueueTriggerListener:
    """Polls one queue and runs the function for each message on a thread pool."""

    def __init__(
        self,
        invoker: Invoker,
        *,
        queue: QueueClient,
        poison: QueueClient,
        options: QueueOptions,
        lease_seconds: float = 60.0,
    ) -> None:
        self.invoker = invoker
        self.queue = queue
        self.poison = poison
        self.options = options
        self.lease_seconds = lease_seconds
        self._executor = ThreadPoolExecutor(
            max_workers=options.batch_size, thread_name_prefix=f"queue-{invoker.spec.name}"
        )
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._poison_ready = False
        # When the host's polling loop means to poll next (`time.monotonic()`), or inf before
        # it starts: what a queue output's wake-up cuts short.
        self.next_poll_at = math.inf

    @property
    def name(self) -> str:
        return self.invoker.spec.name

    @property
    def running(self) -> int:
        """Messages being processed now."""
        with self._lock:
            return len(self._leases)

    def prepare(self) -> None:
        """Create the trigger queue if missing (the host polls a missing queue as empty)."""
        with contextlib.suppress(ResourceExistsError):
            self.queue.create_queue()

    def poll_once(self) -> list[Future[Outcome | None]]:
        """Fetch up to one batch (within free capacity) and start processing it."""
        capacity = self.options.batch_size - self.running
        if capacity <= 0:
            return []
        try:
            messages = list(
                self.queue.receive_messages(
                    messages_per_page=min(32, capacity),
                    max_messages=capacity,
                    visibility_timeout=int(self.lease_seconds),
                )
            )
        except ResourceNotFoundError:
            return []
        futures: list[Future[Outcome | None]] = []
        for message in messages:
            with self._lock:
                self._leases[message.id] = _Lease(str(message.pop_receipt), time.monotonic())
            futures.append(self._executor.submit(self._process, message))
        return futures

    def renew_leases(self) -> None:
        """Extend the invisibility of running messages whose lease is half used."""
        now = time.monotonic()
        with self._lock:
            due = [
                (mid, lease)
                for mid, lease in self._leases.items()
                if now - lease.renewed_at > self.lease_seconds / 2
            ]
        for mid, lease in due:
            with lease.lock:
                if lease.settled:
                    continue
                try:
                    updated = self.queue.update_message(
                        mid, lease.pop_receipt, visibility_timeout=int(self.lease_seconds)
                    )
                except ResourceNotFoundError:
                    continue
                lease.pop_receipt = str(updated.pop_receipt)
                lease.renewed_at = time.monotonic()

    def _lease(self, message: QueueMessage) -> _Lease:
        with self._lock:
            return self._leases[message.id]

    def _settle(self, message: QueueMessage, action: Callable[[str], object]) -> None:
        """Delete or release the message with its current pop receipt (not during a renewal)."""
        lease = self._lease(message)
        with lease.lock:
            action(lease.pop_receipt)
            lease.settled = True

    def _process(self, message: QueueMessage) -> Outcome | None:
        try:
            return self._handle(message)
        except Exception:  # a storage error while settling must not kill the worker
            log.exception(
                "Settling message %s on queue '%s' failed; it becomes visible again when its "
                "lease ends.",
                message.id,
                self.queue.queue_name,
            )
            return None
        finally:
            with self._lock:
                self._leases.pop(message.id, None)

    def _handle(self, message: QueueMessage) -> Outcome | None:
        raw = str(message.content)
        limit = self.options.max_dequeue_count
        count = int(message.dequeue_count or 0)
        if count > limit:
            # Already tried maxDequeueCount times (e.g. by a host that crashed meanwhile).
            self._to_poison(message, f"its dequeue count {count} exceeds {limit}")
            return None
        try:
            body = decode_body(raw, self.options.message_encoding)
        except MessageDecodeError as exc:
            self._to_poison(message, str(exc))
            return None
        value = FunctionsQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=count,
            pop_receipt=self._lease(message).pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        metadata = {
            "QueueTrigger": body.decode("utf-8", errors="replace"),
            "Id": str(message.id),
            "DequeueCount": str(count),
        }
        outcome = self.invoker(
            f"New queue message detected on '{self.queue.queue_name}'.", value, metadata
        )
        if outcome.succeeded:
            self._settle(message, partial(self.queue.delete_message, message.id))
        elif count >= limit:
            self._to_poison(message, f"it failed {count} times (maxDequeueCount {limit})")
        else:
            visible_after = int(self.options.visibility_timeout)
            self._settle(
                message,
                lambda receipt: self.queue.update_message(
                    message.id, receipt, visibility_timeout=visible_after
                ),
            )
        return outcome

    def _to_poison(self, message: QueueMessage, why: str) -> None:
        if not self._poison_ready:
            with contextlib.suppress(ResourceExistsError):
                self.poison.create_queue()
            self._poison_ready = True
        log.warning(
            "Message %s on queue '%s' moved to poison queue '%s': %s.",
            message.id,
            self.queue.queue_name,
            self.poison.queue_name,
            why,
        )
        self.poison.send_message(str(message.content))
        self._settle(message, partial(self.queue.delete_message, message.id))

    def shutdown(self, wait: bool) -> None:
        """Stop processing; fetched messages not started are released at once.

        Messages still running when not waiting become visible again when their lease ends.
        """
        self._executor.shutdown(wait=wait, cancel_futures=True)
        if not wait:
            return
        with self._lock:
            unstarted = list(self._leases.items())
            self._leases.clear()
        for message_id, lease in unstarted:
            with lease.lock, contextlib.suppress(ResourceNotFoundError):
                self.queue.update_message(message_id, lease.pop_receipt, visibility_timeout=0)
