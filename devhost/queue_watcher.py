"""The host's shared queue watcher: a queue output wakes that queue's listener at once.

The Functions host polls a queue with a randomized exponential back-off that grows up to
`maxPollingInterval` while the queue is empty, so a message sent by any client waits up to
that long. A message written through a *queue output binding* of the same host is
different: the binding notifies the host's `SharedQueueWatcher`, and every listener of that
queue name in this host polls right away with its back-off reset. Other instances, and
messages sent with an SDK, still wait for the next poll, as on Azure.
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["SharedQueueWatcher"]


class SharedQueueWatcher:
    """Queue name -> the wake-up events of the listeners polling it in this host."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[threading.Event]] = defaultdict(list)

    def register(self, queue_name: str) -> threading.Event:
        """An event set each time a message is written to `queue_name` by an output."""
        event = threading.Event()
        with self._lock:
            self._events[queue_name.lower()].append(event)
        return event

    def notify(self, queue_name: str) -> None:
        """A queue output of this host wrote to `queue_name`."""
        with self._lock:
            events = list(self._events.get(queue_name.lower(), ()))
        for event in events:
            event.set()
