"""Download inputs like the service does: a GET on each content URL (a blob SAS URL, say).

Failures become `FetchError`s carrying the detailed error code the job reports. URLs in
messages are stripped of their query string so no SAS signature leaks into results or logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import httpx

log = logging.getLogger(__name__)

TRANSCRIPT_HEADER = "x-ms-meta-transcript"
MAX_INPUT_BYTES = 1 << 30  # the service's documented 1 GB limit


class FetchError(Exception):
    """An input that could not be downloaded: ``code`` is the job's detailed error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def strip_query(url: str) -> str:
    """The URL without query string and fragment (no SAS tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Download:
    """An input's bytes and the per-channel script found in its metadata, if any."""

    data: bytes
    script: tuple[tuple[str, ...], ...] | None


def parse_script(value: str | None) -> tuple[tuple[str, ...], ...] | None:
    """Parse ``x-ms-meta-transcript``: a JSON list of phrase lists, one per channel.

    A flat list of strings is taken as channel 0's phrases. Anything else is ignored (the
    scripted engine then writes its placeholder text).
    """
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        log.warning("ignoring %s: not JSON", TRANSCRIPT_HEADER)
        return None
    if isinstance(data, list) and all(isinstance(p, str) for p in data):
        data = [data]
    if not isinstance(data, list) or not all(
        isinstance(ch, list) and all(isinstance(p, str) for p in ch) for ch in data
    ):
        log.warning("ignoring %s: not a list of phrase lists", TRANSCRIPT_HEADER)
        return None
    return tuple(tuple(ch) for ch in data)


def _http_error(response: httpx.Response, url: str) -> FetchError:
    code = response.headers.get("x-ms-error-code", "")
    detail = f" ({code})" if code else ""
    return FetchError(
        "InvalidRecordingsUri",
        f"The recording at {strip_query(url)} could not be downloaded: HTTP "
        f"{response.status_code}{detail}. Check that the URL exists and its SAS grants read "
        "access and has not expired.",
    )


def download(client: httpx.Client, url: str) -> Download:
    """GET one input; raises FetchError."""
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _http_error(response, url)
            length = int(response.headers.get("content-length") or 0)
            if length > MAX_INPUT_BYTES:
                raise FetchError(
                    "AudioLengthLimitExceeded",
                    f"The recording at {strip_query(url)} is larger than 1 GB.",
                )
            data = response.read()
            script = parse_script(response.headers.get(TRANSCRIPT_HEADER))
    except httpx.HTTPError as exc:
        raise FetchError(
            "InvalidRecordingsUri",
            f"The recording at {strip_query(url)} could not be downloaded: "
            f"{type(exc).__name__}. Check that the host is reachable from the service.",
        ) from exc
    return Download(data=data, script=script)


def list_container(client: httpx.Client, container_url: str) -> Sequence[str]:
    """Blob URLs (with the container's SAS) of a container, via the List Blobs call."""
    parts = urlsplit(container_url)
    sas = parts.query
    query = "restype=container&comp=list" + (f"&{sas}" if sas else "")
    list_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    urls: list[str] = []
    marker = ""
    try:
        while True:
            response = client.get(list_url + (f"&marker={marker}" if marker else ""))
            if response.status_code != 200:
                raise FetchError(
                    "InaccessibleCustomerStorage",
                    f"The container {strip_query(container_url)} could not be listed: HTTP "
                    f"{response.status_code}. Its SAS must grant read and list.",
                )
            root = ElementTree.fromstring(response.content)  # noqa: S314 - trusted local storage
            for name in root.iter("Name"):
                blob = f"{parts.path.rstrip('/')}/{name.text}"
                urls.append(urlunsplit((parts.scheme, parts.netloc, blob, sas, "")))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return urls
    except httpx.HTTPError as exc:
        raise FetchError(
            "InaccessibleCustomerStorage",
            f"The container {strip_query(container_url)} could not be listed: "
            f"{type(exc).__name__}.",
        ) from exc
    except ElementTree.ParseError as exc:
        raise FetchError(
            "InaccessibleCustomerStorage",
            f"The container {strip_query(container_url)} did not answer a blob listing.",
        ) from exc
