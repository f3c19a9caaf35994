"""The resource's capacity: a fixed number of files transcribed at once, shared by all jobs.

Files wait for a slot first in the order their jobs were submitted, then in input order, so
a job of 1,000 files and 1,000 jobs of one file each get through the same slots at the
same pace. The queue holds one entry per waiting job (not per file) so a burst of big jobs
costs little memory.

Not thread-safe on its own: the job runner holds its lock around every call.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass(order=True)
class _Waiting:
    seq: int  # submission order; unique, so entries never compare past it
    job_id: str = field(compare=False)
    count: int = field(compare=False)
    taken: int = field(default=0, compare=False)


class FileSlots:
    """FIFO queue of files waiting for one of ``limit`` slots."""

    def __init__(self) -> None:
        self._heap: list[_Waiting] = []
        self.running = 0  # files holding a slot
        self.waiting = 0  # files queued behind them

    def add(self, seq: int, job_id: str, count: int) -> None:
        """Queue ``count`` files of a job submitted as number ``seq``."""
        if count > 0:
            heapq.heappush(self._heap, _Waiting(seq, job_id, count))
            self.waiting += count

    def take(self, limit: int) -> tuple[str, int] | None:
        """Give the next waiting file a slot: (job id, input index), or None."""
        if self.running >= limit or not self._heap:
            return None
        head = self._heap[0]
        index = head.taken
        head.taken += 1
        if head.taken == head.count:
            heapq.heappop(self._heap)
        self.running += 1
        self.waiting -= 1
        return head.job_id, index

    def release(self) -> None:
        """A file left its slot."""
        self.running -= 1

    def drop(self, job_id: str) -> None:
        """Forget a job's waiting files (it was deleted or vanished)."""
        kept = [w for w in self._heap if w.job_id != job_id]
        if len(kept) != len(self._heap):
            self.waiting -= sum(w.count - w.taken for w in self._heap if w.job_id == job_id)
            heapq.heapify(kept)
            self._heap = kept

    def clear(self) -> None:
        """Forget everything (admin reset)."""
        self._heap.clear()
        self.running = 0
        self.waiting = 0
