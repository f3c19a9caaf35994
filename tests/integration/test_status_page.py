"""The status page in a real headless Chromium, against the app running a mixed batch.

Asserts on the DOM Chromium built (tables, counts, the recording named with markup shown as
text and never run), saves a screenshot under the test's temp dir (pytest prints nothing for
it: look in `tmp_path`), and clicks a retry button, checking the API saw the retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from devhost.services import Azurite, wait_for
from tests.browser import Browser, chromium, dump_dom, screenshot
from tests.integration.ops_app import BAD, HOSTILE, INJECTED, App, running_ops_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    chromium()  # skip (or fail with REQUIRE_BROWSER=1) before running a whole batch
    with running_ops_app(azurite, tmp_path_factory.mktemp("status")) as running:
        yield running


class _Dom(HTMLParser):
    """Just enough of the DOM: table cells by table id, element ids' text, script count."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.text: dict[str, str] = {}
        self.scripts = 0
        self.buttons: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._ids: list[tuple[str, str]] = []  # (tag, id) of open elements with an id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = found.get("id") or ""
            self.tables[self._table] = []
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        if tag in ("td", "th") and self._table is not None:
            self._cell = []
        if tag == "button":
            self.buttons.append(found)
        if found.get("id"):
            self._ids.append((tag, str(found["id"])))
            self.text[str(found["id"])] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None
        if self._ids and self._ids[-1][0] == tag:
            self._ids.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, element in self._ids:
            self.text[element] += data


def _dom(html: str) -> _Dom:
    dom = _Dom()
    dom.feed(html)
    return dom


def _rows(dom: _Dom, table: str) -> list[list[str]]:
    return dom.tables[table][1:]  # without the header row


def test_the_page_renders_counts_tables_and_the_hostile_name_as_text(
    app: App, tmp_path: Path
) -> None:
    url = f"{app.base_url}/api/status"
    html = dump_dom(url, tmp_path)
    dom = _dom(html)
    stats: dict[str, Any] = app.get("/api/stats").json()

    assert dom.text["summary-done"] == str(stats["counts"]["done"]) == "4"
    assert dom.text["summary-failed"] == "2"
    assert dom.text["summary-rejected"] == "2"
    assert dom.text["summary-in-flight"] == "0"
    assert "Nothing is in flight" in dom.text["in-flight-empty"]

    failures = _rows(dom, "failures")
    by_name = {row[0]: row for row in failures}
    assert set(by_name) == {*INJECTED, *BAD}
    assert by_name[HOSTILE][1] == "failed"
    assert by_name[HOSTILE][2] == "InvalidAudioFormat"
    assert by_name["bad/empty.wav"][1] == "rejected"
    assert by_name["bad/empty.wav"][4]  # the advice text is shown
    assert by_name["bad/empty.wav"][6] == ""  # a rejected input has no retry button
    assert {b["data-name"] for b in dom.buttons} == set(INJECTED)  # failed ones do

    # The name is shown as text: its markup never became elements or ran.
    assert dom.scripts == 1  # the page's own script only
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert" in html

    reasons = {row[0]: row[1] for row in _rows(dom, "reasons")}
    assert reasons == {"InvalidAudioFormat": "2", "EmptyFile": "1", "NotAudio": "1"}
    assert "chart-throughput" in dom.text
    assert "chart-turnaround" in dom.text

    shot = screenshot(url, tmp_path / "status-page.png")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_retry_button_retries_through_the_api(app: App, tmp_path: Path) -> None:
    key = app.rows()[HOSTILE]["RowKey"]
    browser = Browser()
    try:
        browser.open(f"{app.base_url}/api/status")
        clicked = browser.evaluate(
            f"(() => {{ const b = document.querySelector('button[data-retry=\"{key}\"]');"
            " if (!b) return false; b.click(); return true; })()"
        )
        assert clicked is True
        status = wait_for(
            lambda: (
                browser.evaluate("document.getElementById('retry-status').textContent")
                if "queued"
                in (browser.evaluate("document.getElementById('retry-status').textContent") or "")
                else None
            ),
            timeout=30,
            what="the page to report the retry",
        )
        assert HOSTILE in status
        browser.page("Page.captureScreenshot")  # the page still renders after the click
    finally:
        browser.close()
    job = app.get(f"/api/jobs/{key}").json()
    assert ("deferred", "RetryRequested") in [
        (t["state"], t["reasonCode"]) for t in job["transitions"]
    ]
