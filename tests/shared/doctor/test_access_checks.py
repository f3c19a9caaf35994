"""The access checks' verdicts (no servers): what a probe transcription's end means."""

from __future__ import annotations

from typing import Any

import pytest

from shared.audio_header import sniff_audio
from shared.doctor.access_checks import probe_recording, read_verdict
from shared.doctor.report import Status
from shared.settings import Settings
from shared.speech_models import Transcription

BASE = {
    "SPEECH_ENDPOINT": "http://127.0.0.1:1",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
SELF = "http://127.0.0.1:1/speechtotext/transcriptions/0a9b5a1e-58d5-4b0c-9c16-4f7f2b5a9a11"


def settings(access: str) -> Settings:
    return Settings.from_env({**BASE, "SPEECH_STORAGE_ACCESS": access})


def finished(status: str, code: str = "") -> Transcription:
    data: dict[str, Any] = {"self": SELF, "status": status, "properties": {}}
    if code:
        data["properties"]["error"] = {"code": code, "message": "could not read it"}
    return Transcription.from_json(data)


def test_the_probe_recording_is_a_valid_one_second_wav() -> None:
    data = probe_recording()
    info = sniff_audio(
        lambda offset, length: data[offset : offset + length],
        name="_doctor/probe.wav",
        size=len(data),
        max_bytes=1 << 20,
    )
    assert (info.format, info.channels) == ("wav", 1)
    assert info.duration_s == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("access", "found"),
    [("identity", "with its own identity"), ("sas", "through a valid read-only SAS")],
)
@pytest.mark.parametrize("code", ["InvalidRecordingsUri", "InaccessibleCustomerStorage"])
def test_speech_unable_to_read_fails_naming_the_access_setting(
    access: str, found: str, code: str
) -> None:
    check = read_verdict(settings(access), "how", "out", finished("Failed", code))
    assert check.status is Status.FAIL
    assert check.setting == "SPEECH_STORAGE_ACCESS"
    assert found in check.message
    assert code in check.message
    other = "sas" if access == "identity" else "identity"
    assert f"SPEECH_STORAGE_ACCESS={other}" in check.fix  # the other mode is the way out
    assert "resource-instance rule" in check.fix


def test_other_endings() -> None:
    ok = read_verdict(settings("identity"), "its own identity", "out", finished("Succeeded"))
    assert (ok.status, ok.message) == (
        Status.OK,
        "Speech read a probe recording through its own identity",
    )
    late = read_verdict(settings("sas"), "a SAS", "out", None)
    assert late.status is Status.WARN
    assert "not confirmed" in late.message
    other = read_verdict(settings("sas"), "a SAS", "out", finished("Failed", "InternalServerError"))
    assert other.status is Status.WARN  # not a storage verdict either way
    assert not other.setting
