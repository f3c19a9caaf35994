"""Keep URL query strings (SAS signatures) out of httpx's own log lines.

httpx logs every request at INFO as ``HTTP Request: GET <full URL> ...``; for a result
download that URL is a SAS URL with its signature, and the Functions host ships INFO logs
to Application Insights. `install_log_redaction` puts a filter on the ``httpx`` logger that
rewrites such records (query strings cut off, the line otherwise kept: it is useful).

Installed explicitly, not as a side effect of an import: the Speech transport calls it when
it is built (every request the app makes with httpx goes through one), and anything else
that logs through httpx may call it too. Calling it again changes nothing. No httpx import
here, so installing it costs nothing at cold start.
"""

from __future__ import annotations

import logging
from typing import Final

from shared.errors import redact_urls

__all__ = ["HTTPX_LOGGER", "RedactUrlQueries", "install_log_redaction"]

HTTPX_LOGGER: Final = "httpx"


class RedactUrlQueries(logging.Filter):
    """Rewrite a record so that no URL in its message or arguments keeps its query string.

    Arguments are matched by their text, not their type: httpx passes an `httpx.URL`, and
    anything whose text holds a URL is just as dangerous.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = redact_urls(record.msg)
        return True


def _redacted(arg: object) -> object:
    if isinstance(arg, int | float):
        return arg  # keeps %d and %.0f working; a number holds no URL
    text = str(arg)
    return redact_urls(text) if "://" in text else arg


def install_log_redaction(logger_name: str = HTTPX_LOGGER) -> None:
    """Put a `RedactUrlQueries` filter on `logger_name` unless one is there already."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactUrlQueries) for f in logger.filters):
        logger.addFilter(RedactUrlQueries())
