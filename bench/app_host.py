"""`python -m bench.app_host [devhost options]`: devhost with a storage request counter.

Exactly `python -m devhost` (same options, same process model), plus the counter of
`bench.storage_counter` installed before the app is imported. The tallies are written to
the file named by ``BENCH_STORAGE_COUNTS`` every few seconds and once more on exit, so the
benchmark can read them after stopping the app.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from bench.storage_counter import StorageCounter, install, service_ports
from devhost.__main__ import main as devhost_main

COUNTS_ENV = "BENCH_STORAGE_COUNTS"
DUMP_EVERY_S = 5.0
STORAGE_SETTING = "AzureWebJobsStorage"  # the Functions setting's real (mixed-case) name


def run(argv: list[str]) -> int:
    """Install the counter, run devhost until it stops, write the final tallies."""
    target = os.environ.get(COUNTS_ENV, "").strip()
    if not target:
        print(f"{COUNTS_ENV} must name the file to write the storage counts to", file=sys.stderr)
        return 2
    path = Path(target)
    root = str(Path(__file__).resolve().parent.parent)
    counter = StorageCounter(root, service_ports(os.environ.get(STORAGE_SETTING, "")))
    install(counter)
    stop = threading.Event()

    def periodic() -> None:
        while not stop.wait(DUMP_EVERY_S):
            counter.dump(path)

    threading.Thread(target=periodic, name="storage-counts", daemon=True).start()
    try:
        return devhost_main(argv)
    finally:
        stop.set()
        counter.dump(path)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
