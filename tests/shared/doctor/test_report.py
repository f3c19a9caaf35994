"""The report: one line per check, JSON, and no secret in either."""

from __future__ import annotations

import json

from shared.doctor.report import Check, Report, scrub

KEY = "0123456789abcdef0123456789abcdef"


def test_one_line_per_check_with_setting_and_fix() -> None:
    report = Report(
        [
            Check.ok("speech.endpoint", "https://s answers"),
            Check.fail("speech.auth", "refused the key", setting="SPEECH_KEY", fix="copy Key 1"),
            Check.warn("storage.queue", "2 in poison"),
            Check.skip("speech.model", "not checked"),
        ],
        elapsed_s=1.25,
    )
    lines = report.lines()
    assert lines[:4] == [
        "OK   speech.endpoint: https://s answers",
        "FAIL speech.auth: refused the key [SPEECH_KEY] -> fix: copy Key 1",
        "WARN storage.queue: 2 in poison",
        "SKIP speech.model: not checked",
    ]
    assert lines[4] == "1 check(s) failed; 1 warning(s); 1.2 s"
    assert not report.ok


def test_warnings_and_skips_do_not_fail_the_report() -> None:
    report = Report([Check.warn("a", "b"), Check.skip("c", "d"), Check.ok("e", "f")])
    assert report.ok
    assert report.lines()[-1].startswith("all checks passed; 1 warning(s)")


def test_json_shape() -> None:
    report = Report([Check.fail("x.y", "m", setting="S", fix="f")], elapsed_s=0.5)
    assert json.loads(report.json_text()) == {
        "ok": False,
        "elapsedSeconds": 0.5,
        "checks": [{"name": "x.y", "status": "fail", "message": "m", "setting": "S", "fix": "f"}],
    }


def test_secrets_and_sas_never_leave_the_report() -> None:
    check = Check.fail(
        "speech.auth",
        f"the service said: key {KEY} is wrong; see https://acct.blob.core.windows.net/c/b?sig=s3cr3t",
        fix=f"not {KEY}",
    )
    report = Report([check], secrets=[KEY, ""])
    for text in (report.json_text(), "\n".join(report.lines())):
        assert KEY not in text
        assert "s3cr3t" not in text
        assert "https://acct.blob.core.windows.net/c/b" in text  # the URL stays, its query goes


def test_scrub_ignores_tiny_values() -> None:
    # A one-letter "secret" would shred every message; real secrets are long.
    assert scrub("a b c", ["a"]) == "a b c"
