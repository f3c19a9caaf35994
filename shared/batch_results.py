"""Matching a multi-file job's results to its recordings, purely, by source URL.

The service names each result file by position (``contenturl_0.json``), but the position is
not a promise; every result and every entry of the job's report carries the ``source`` URL
it was made from (without the SAS). Results are matched by that URL, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["FileOutcome", "report_outcomes", "result_source", "source_key"]


def source_key(url: str) -> str:
    """A URL reduced to what names the recording: scheme, host, decoded path; no query.

    The app sends a SAS URL (or a plain one); the service echoes it without the query and
    perhaps encoded differently, so both sides are compared in this form.
    """
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{unquote(parts.path)}"


def result_source(result: Any) -> str:
    """The ``source`` of a result file's JSON; ValueError when it has none."""
    source = result.get("source") if isinstance(result, Mapping) else None
    if not isinstance(source, str) or not source:
        raise ValueError("the result file names no source recording")
    return source


@dataclass(frozen=True)
class FileOutcome:
    """One input of a job as its report tells it."""

    succeeded: bool
    error_kind: str = ""
    error_message: str = ""


def report_outcomes(report: Any) -> dict[str, FileOutcome]:
    """`source_key` -> outcome for every input the ``TranscriptionReport`` lists.

    Entries without a usable source are skipped (they cannot be matched to a recording;
    the recording then counts as having no result and is retried on its own).
    """
    details = report.get("details") if isinstance(report, Mapping) else None
    outcomes: dict[str, FileOutcome] = {}
    for item in details if isinstance(details, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("source"), str):
            continue
        succeeded = item.get("status") == "Succeeded"
        outcomes[source_key(item["source"])] = FileOutcome(
            succeeded=succeeded,
            error_kind="" if succeeded else str(item.get("errorKind") or "Unknown"),
            error_message="" if succeeded else str(item.get("errorMessage") or ""),
        )
    return outcomes
