"""Console logging in the style of `func start`: `[timestamp] message`, app logs tagged."""

from __future__ import annotations

import logging
import sys
import time

from devhost.invoker import FunctionLogFilter


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def configure_logging(level: int = logging.INFO, *, prefix: str = "") -> None:
    """Send devhost and app logs to stdout, one line per record, app logs with their function.

    `prefix` starts every message (``[instance 1] `` when several instances share a console).
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(FunctionLogFilter())
    handler.setFormatter(_UtcFormatter(f"[%(asctime)s] {prefix}%(function)s%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Azure SDKs log every HTTP request at INFO; the host does not show those either.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
