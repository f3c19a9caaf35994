"""Error reports: what, why, what to do, which job; never a secret."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

from shared import jobs
from shared.error_reports import advice_for, build_error_report
from shared.service_failures import is_transient_failure

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def record() -> jobs.JobRecord:
    base = jobs.new_job(
        container="audio-input",
        name="calls/ü #1.wav",
        etag='"0x1"',
        size=10,
        now=T0,
        timeout=timedelta(hours=1),
        lease=timedelta(minutes=1),
    )
    return dataclasses.replace(
        base,
        attempts=2,
        transcription_id="abc",
        transcription_url="https://speech/speechtotext/transcriptions/abc?sig=SECRET",
        service_status="Failed",
    )


def test_report_names_job_blob_reason_and_advice() -> None:
    data = build_error_report(
        record(),
        outcome="failed",
        reason_code="InvalidAudioFormat",
        message="cannot decode",
        now=T0,
        service_error_code="InvalidAudioFormat",
    )
    report = json.loads(data)
    assert report["outcome"] == "failed"
    assert report["reasonCode"] == report["serviceErrorCode"] == "InvalidAudioFormat"
    assert report["message"] == "cannot decode"
    assert "PCM WAV" in report["whatToDo"]
    assert report["input"] == {
        "container": "audio-input",
        "name": "calls/ü #1.wav",
        "etag": '"0x1"',
        "size": 10,
    }
    assert report["jobKey"] == record().key
    assert report["attempts"] == 2
    assert report["created"] == T0.isoformat()
    assert "ü" in data.decode("utf-8")


def test_report_never_carries_a_query_string() -> None:
    data = build_error_report(
        record(), outcome="failed", reason_code="TimedOut", message="late", now=T0
    )
    assert b"SECRET" not in data
    assert b"sig=" not in data
    assert json.loads(data)["transcriptionUrl"].endswith("/transcriptions/abc")


def test_unknown_codes_get_generic_advice() -> None:
    assert "upload it again" in advice_for("SomethingNew")
    assert advice_for("EmptyFile") != advice_for("SomethingNew")


def test_transient_service_failures() -> None:
    assert is_transient_failure("InternalServerError")
    assert is_transient_failure("ServiceUnavailable")
    assert not is_transient_failure("InvalidAudioFormat")
    assert not is_transient_failure("SomethingNew")  # unknown: report, do not loop
    assert not is_transient_failure(None)
    assert not is_transient_failure("")
