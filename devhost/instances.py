"""``python -m devhost --instances N``: N devhost processes on one storage account.

Each instance is a process of its own (``--instance-index i``), as each instance of a
scaled-out Functions app is, so nothing "per process" (a cache, a rate limiter) is shared
by accident. They share what the platform shares: the storage account and the host id.
Instance *i* serves HTTP on ``--port + i`` (0: a free port each). What keeps them from
doing the same work twice is the host's own coordination, in storage (`devhost.leases`):
timers run on the one instance holding their singleton lock, a blob version runs on the
instance holding its receipt's lease, and queue messages are taken by one poller each.

This process only starts the instances, prints which is which, and on Ctrl+C/SIGTERM
stops them all. An instance that exits (or is killed) is not restarted: the others take
over its timers once its lock lease ends, as on Azure.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("devhost")


def instance_argv(base: Sequence[str], index: int, port: int) -> list[str]:
    """The command line of instance `index`: devhost with `base` options, its own port."""
    return [
        sys.executable,
        "-m",
        "devhost",
        *base,
        "--port",
        str(port + index if port else 0),
        "--instance-index",
        str(index),
    ]


def run_instances(base: Sequence[str], *, count: int, port: int) -> int:
    """Start `count` instances, wait until all have exited or a stop is asked; 0 when clean."""
    processes = [
        subprocess.Popen(instance_argv(base, index, port), stdin=subprocess.DEVNULL)
        for index in range(count)
    ]
    for index, process in enumerate(processes):
        log.info(
            "devhost instance %d started (pid %d, HTTP port %s).",
            index,
            process.pid,
            port + index if port else "free",
        )
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("Received %s; stopping %d instances.", signal.Signals(signum).name, count)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping.is_set() and any(p.poll() is None for p in processes):
        stopping.wait(0.5)
    for process in processes:
        if process.poll() is None:
            process.terminate()  # each instance finishes its running invocations
    codes = [process.wait() for process in processes]
    log.info("All instances stopped (exit codes %s).", codes)
    return 0 if stopping.is_set() or not any(codes) else 1
