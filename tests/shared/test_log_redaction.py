"""The httpx log filter: installed when a Speech client is built (not on import), once."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.log_redaction import RedactUrlQueries, install_log_redaction
from shared.speech_client import SpeechClient

SAS_URL = "https://acct.blob.core.windows.net/c/a.json?sv=2023&sig=SECRETsig%3D"
ROOT = Path(__file__).resolve().parents[2]


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args, None)


def test_url_arguments_and_messages_lose_their_query() -> None:
    record = _record(
        'HTTP Request: %s %s "%s %d %s"', "GET", httpx.URL(SAS_URL), "HTTP/1.1", 200, "OK"
    )
    assert RedactUrlQueries().filter(record)
    text = record.getMessage()
    assert "SECRETsig" not in text
    assert text == (
        'HTTP Request: GET https://acct.blob.core.windows.net/c/a.json "HTTP/1.1 200 OK"'
    )
    inline = _record(f"redirect to {SAS_URL} refused")
    RedactUrlQueries().filter(inline)
    assert inline.getMessage() == "redirect to https://acct.blob.core.windows.net/c/a.json refused"


def test_install_is_idempotent() -> None:
    logger = logging.getLogger("test-log-redaction")
    install_log_redaction(logger.name)
    install_log_redaction(logger.name)
    assert sum(isinstance(f, RedactUrlQueries) for f in logger.filters) == 1


def _httpx_filters_after(code: str) -> int:
    probe = (
        "import logging; from shared.log_redaction import RedactUrlQueries; "
        f"{code}; "
        "print(sum(isinstance(f, RedactUrlQueries) for f in logging.getLogger('httpx').filters))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize(
    ("code", "filters"),
    [
        ("import shared.speech_client", 0),  # importing installs nothing
        ("from shared.speech_client import SpeechClient; SpeechClient('http://s', key='k')", 1),
        (
            "from shared.speech_client import SpeechClient; "
            "[SpeechClient('http://s', key='k') for _ in range(3)]",
            1,
        ),
    ],
)
def test_building_a_client_installs_the_filter_once(code: str, filters: int) -> None:
    assert _httpx_filters_after(code) == filters


def test_a_client_request_is_logged_without_the_sas(caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"{}"))
    with (
        SpeechClient("https://speech.example", key="k" * 32, transport=transport) as client,
        caplog.at_level(logging.INFO, logger="httpx"),
    ):
        client.download(SAS_URL)
    assert "HTTP Request: GET https://acct.blob.core.windows.net/c/a.json" in caplog.text
    assert "SECRETsig" not in caplog.text
