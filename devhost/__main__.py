"""`python -m devhost`: run the Functions app locally without Core Tools (a local tool only)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devhost.host import DevHost
from devhost.host_config import HostConfigError
from devhost.http_server import HttpServerError
from devhost.indexing import AppLoadError
from devhost.instances import run_instances
from devhost.local_settings import LocalSettingsError, apply_local_settings, ensure_local_settings
from devhost.logs import configure_logging
from devhost.setting_refs import BindingConfigError

log = logging.getLogger("devhost")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: port, app, settings file and project root."""
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run an Azure Functions Python (v2) app locally without Core Tools. "
        "A development tool: production runs on Azure Functions.",
    )
    parser.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071)")
    parser.add_argument(
        "--app",
        default="function_app",
        help="app module or .py file, relative to --root (default function_app)",
    )
    parser.add_argument(
        "--settings",
        default="local.settings.json",
        help="local settings file, relative to --root (default local.settings.json)",
    )
    parser.add_argument("--root", default=".", help="the app's directory (default: current)")
    parser.add_argument(
        "--blob-scan-interval",
        type=float,
        default=2.0,
        help="seconds between blob container scans (default 2)",
    )
    parser.add_argument(
        "--queue-lease",
        type=float,
        default=60.0,
        help="seconds a running queue message stays invisible, renewed while it runs; after "
        "a crash its messages come back this long after (default 60)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="run N instances (processes) on one storage account, coordinated as the "
        "Functions host does: singleton timers, leased blob receipts, shared queues; "
        "instance i serves HTTP on --port + i (default 1)",
    )
    parser.add_argument(
        "--instance-index",
        default=None,
        help="this process is instance I of several (set by --instances)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    return args


def instance_options(args: argparse.Namespace) -> list[str]:
    """The options each instance of `--instances` runs with (all but port and count)."""
    options = [
        "--app",
        args.app,
        "--settings",
        args.settings,
        "--root",
        args.root,
        "--blob-scan-interval",
        str(args.blob_scan_interval),
        "--queue-lease",
        str(args.queue_lease),
    ]
    return [*options, "--verbose"] if args.verbose else options


def main(argv: list[str] | None = None) -> int:
    """Load settings, index the app, run its triggers until SIGINT/SIGTERM."""
    args = parse_args(argv)
    configure_logging(
        logging.DEBUG if args.verbose else logging.INFO,
        prefix=f"[instance {args.instance_index}] " if args.instance_index is not None else "",
    )
    if args.instances > 1:
        return run_instances(instance_options(args), count=args.instances, port=args.port)
    root = Path(args.root).resolve()
    settings_path = root / args.settings
    try:
        ensure_local_settings(settings_path)
        apply_local_settings(settings_path, os.environ)
        host = DevHost.from_app(
            args.app,
            root=root,
            http_port=args.port,
            blob_scan_interval=args.blob_scan_interval,
            queue_lease_seconds=args.queue_lease,
            instance=args.instance_index or "0",
        )
        host.start()
    except (
        LocalSettingsError,
        HostConfigError,
        AppLoadError,
        BindingConfigError,
        HttpServerError,
    ) as exc:
        log.error("devhost cannot start: %s", exc)
        return 2
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("Received %s; stopping (running invocations finish).", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info("Application started. Press Ctrl+C to shut down.")
    stopping.wait()
    host.stop(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
