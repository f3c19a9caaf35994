"""Real headless Chromium for page tests: the DOM after scripts ran, screenshots, and clicks.

Uses Debian's ``chromium`` (installed by ``.ci/run``). Without it the page tests skip with a
message saying how to get it, unless ``REQUIRE_BROWSER=1`` (CI) makes that a failure.

`dump_dom` and `screenshot` are Chromium's own command-line switches. `Browser` drives a page
through the DevTools protocol over ``--remote-debugging-pipe`` (NUL-separated JSON on file
descriptors 3 and 4), so clicking a button needs no WebSocket library and no driver binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from devhost.services import wait_for

_COMMON = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars")


def chromium() -> str:
    """The Chromium binary; skips the test (fails it with REQUIRE_BROWSER=1) when absent."""
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if path:
        return path
    message = (
        "headless Chromium is not installed: `sudo apt-get install chromium` (Debian/Ubuntu), "
        "or put a `chromium` on PATH"
    )
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {message}")
    pytest.skip(message)


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *_COMMON, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def dump_dom(url: str, tmp: Path) -> str:
    """The serialised DOM of `url` once its scripts ran."""
    return _run(["--virtual-time-budget=3000", "--dump-dom", url], tmp / "profile-dom").stdout


def screenshot(url: str, path: Path, size: str = "1366,1600") -> Path:
    """A PNG of `url` at a laptop's width."""
    _run([f"--window-size={size}", f"--screenshot={path}", url], tmp_profile(path))
    assert path.is_file(), path
    assert path.stat().st_size > 0, path
    return path


def tmp_profile(near: Path) -> Path:
    return near.parent / f"profile-{near.stem}"


class Browser:
    """One headless Chromium page driven over the DevTools pipe."""

    def __init__(self) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def on_fds_3_and_4() -> None:  # Chromium reads commands on 3, writes answers on 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self._profile = tempfile.mkdtemp(prefix="chromium-")
        self._process = subprocess.Popen(
            [chromium(), *_COMMON, "--remote-debugging-pipe", f"--user-data-dir={self._profile}"],
            pass_fds=(3, 4),
            preexec_fn=on_fds_3_and_4,  # noqa: PLW1509 - single-threaded at this point
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        targets = self._call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        attached = self._call("Target.attachToTarget", {"targetId": page, "flatten": True})
        self._session = attached["sessionId"]

    def _call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}, **kw}
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk

    def page(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools command for the page."""
        return self._call(method, params, sessionId=self._session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Load `url` and wait until its document is complete."""
        self.page("Page.navigate", {"url": url})
        wait_for(
            lambda: (
                self.evaluate("document.readyState") == "complete"
                and self.evaluate("location.href") == url
            ),
            timeout=30,
            what=f"{url} to load",
        )

    def close(self) -> None:
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._process.terminate()
        self._process.wait(timeout=30)
        shutil.rmtree(self._profile, ignore_errors=True)
