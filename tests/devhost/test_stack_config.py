import pytest

from devhost.stack_config import (
    DropInstructions,
    StackError,
    child_environment,
    choose_runner,
    effective_settings,
)
from shared.audio_header import ALLOWED_EXTENSIONS


def test_owned_settings_override_and_defaults_yield_to_exported_values():
    env = child_environment(
        {"POLL_SCHEDULE": "0 * * * * *", "SPEECH_ENDPOINT": "https://real"},
        {"SPEECH_ENDPOINT": "http://127.0.0.1:1", "AzureWebJobsStorage": "conn"},
    )
    assert env["SPEECH_ENDPOINT"] == "http://127.0.0.1:1"  # the stack's own service
    assert env["AzureWebJobsStorage"] == "conn"
    assert env["POLL_SCHEDULE"] == "0 * * * * *"  # exported: kept
    assert env["POLL_MIN_INTERVAL_SECONDS"] == "0"  # local default


def test_effective_settings_environment_wins_over_file():
    merged = effective_settings({"INPUT_CONTAINER": "file-in", "X": "file"}, {"X": "env"})
    assert merged["INPUT_CONTAINER"] == "file-in"
    assert merged["X"] == "env"
    assert merged["OUTPUT_CONTAINER"] == "transcripts"  # the app's default


@pytest.mark.parametrize(
    ("requested", "func_path", "expected"),
    [
        ("auto", None, "devhost"),
        ("auto", "/usr/bin/func", "func"),
        ("", "/usr/bin/func", "func"),
        ("devhost", "/usr/bin/func", "devhost"),
        ("FUNC", "/usr/bin/func", "func"),
    ],
)
def test_runner_choice(requested, func_path, expected):
    assert choose_runner(requested, func_path) == expected


def test_runner_func_without_core_tools_is_a_clear_error():
    with pytest.raises(StackError, match=r"not on PATH"):
        choose_runner("func", None)


def test_unknown_runner_is_rejected():
    with pytest.raises(StackError, match=r"RUNNER='docker'"):
        choose_runner("docker", None)


def test_drop_instructions_name_every_way_in():
    text = DropInstructions(
        connection_string="CONNSTR",
        input_container="audio-input",
        output_container="transcripts",
        error_container="errs",
        default_ports=True,
    ).render()
    assert "make upload FILE=" in text
    assert "az storage blob upload --connection-string" in text
    assert "-c audio-input" in text
    assert "(Emulator - Default Ports)" in text
    assert "CONNSTR" in text
    assert [ext for ext in ALLOWED_EXTENSIONS if ext not in text] == []  # every accepted one
    assert "http://localhost:7071/api/status" in text  # the status page
    other = DropInstructions("C", "a", "b", "c", default_ports=False, port=8080).render()
    assert "Connection string" in other
    assert "http://localhost:8080/api/status" in other
