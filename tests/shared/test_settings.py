"""Settings: defaults, parsing, and a clear ConfigurationError naming every bad setting."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.secret import Secret
from shared.settings import ALL_OUTPUT_FORMATS, Settings, get_settings

BASE = {
    "SPEECH_ENDPOINT": "https://my-speech.cognitiveservices.azure.com/",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def parse(**extra: str) -> Settings:
    return Settings.from_env({**BASE, **extra})


def rejects(setting: str, value: str, *, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**(env if env is not None else BASE), setting: value})
    assert info.value.setting == setting
    assert setting in str(info.value)
    return str(info.value)


def test_defaults_match_the_documented_ones() -> None:
    s = parse()
    assert s.speech_endpoint == "https://my-speech.cognitiveservices.azure.com"  # no trailing /
    assert s.speech_api_version == "2024-11-15"
    assert s.speech_locale == "en-US"
    assert s.speech_model == ""
    assert s.storage_connection == "AzureWebJobsStorage"
    assert (s.input_container, s.output_container, s.error_container) == (
        "audio-input",
        "transcripts",
        "transcription-errors",
    )
    assert s.jobs_table == "transcriptionjobs"
    assert s.completion_queue == "transcription-completions"
    assert s.poll_schedule == "0 * * * * *"
    assert s.blob_trigger_source == "LogsAndContainerScan"
    assert s.time_to_live_hours == 48
    assert s.output_formats == frozenset(ALL_OUTPUT_FORMATS)
    assert s.channel_labels == ("Agent", "Customer")
    assert s.max_audio_mb == 1024
    assert s.poll_list_threshold == 5
    assert s.job_lease_seconds == 600.0
    assert not s.uses_key


def test_values_are_parsed_and_normalised() -> None:
    s = parse(
        SPEECH_KEY="k3y",
        SPEECH_API_VERSION="2025-10-15",
        SPEECH_LOCALE="de-DE",
        SPEECH_MODEL="https://x.cognitiveservices.azure.com/speechtotext/models/abc",
        BLOB_TRIGGER_SOURCE="eventgrid",
        SAS_VALIDITY_HOURS="0.5",
        PUNCTUATION_MODE="automatic",
        DIARIZATION_ENABLED="yes",
        LANGUAGE_CANDIDATES="en-US, de-DE",
        CHANNEL_LABELS="Rep,Caller",
        OUTPUT_FORMATS="channels,RAW",
        POLL_MIN_INTERVAL_SECONDS="0",
        JOB_LEASE_SECONDS="20",
    )
    assert s.uses_key
    assert s.speech_api_version == "2025-10-15"
    assert s.speech_locale == "de-DE"
    assert s.speech_model.endswith("/models/abc")
    assert s.blob_trigger_source == "EventGrid"
    assert s.sas_validity_hours == 0.5
    assert s.punctuation_mode == "Automatic"
    assert s.diarization_enabled
    assert s.language_candidates == ("en-US", "de-DE")
    assert s.channel_labels == ("Rep", "Caller")
    assert s.output_formats == frozenset({"channels", "raw"})
    assert s.poll_min_interval_seconds == 0.0
    assert s.job_lease_seconds == 20.0


def test_blank_values_mean_the_default() -> None:
    assert parse(SPEECH_LOCALE="  ", INPUT_CONTAINER="").input_container == "audio-input"


def test_the_key_never_shows_in_repr() -> None:
    s = parse(SPEECH_KEY="super-secret-key")
    assert "super-secret-key" not in repr(s)
    assert s.speech_key.reveal() == "super-secret-key"
    assert repr(Secret("")) == "Secret('')"


def test_missing_endpoint_is_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert info.value.setting == "SPEECH_ENDPOINT"
    assert "cognitiveservices.azure.com" in str(info.value)  # says what is expected


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SPEECH_ENDPOINT", "ftp://speech"),
        ("SPEECH_ENDPOINT", "https://speech.example?key=1"),
        ("SPEECH_API_VERSION", "v3.2"),
        ("SPEECH_LOCALE", "english"),
        ("SPEECH_MODEL", "not a url"),
        ("INPUT_CONTAINER", "Audio_Input"),
        ("OUTPUT_CONTAINER", "ab"),
        ("ERROR_CONTAINER", "double--hyphen"),
        ("JOBS_TABLE", "1jobs"),
        ("COMPLETION_QUEUE", "UPPER"),
        ("POLL_SCHEDULE", "*/5 * * * *"),
        ("SWEEP_SCHEDULE", "hourly"),
        ("BLOB_TRIGGER_SOURCE", "webhook"),
        ("SAS_VALIDITY_HOURS", "0"),
        ("SAS_VALIDITY_HOURS", "two"),
        ("TIME_TO_LIVE_HOURS", "5"),
        ("TIME_TO_LIVE_HOURS", "48.5"),
        ("WORD_TIMESTAMPS", "maybe"),
        ("PUNCTUATION_MODE", "Sometimes"),
        ("PROFANITY_FILTER_MODE", "Bleep"),
        ("DIARIZATION_MAX_SPEAKERS", "1"),
        ("LANGUAGE_CANDIDATES", "en-US"),
        ("LANGUAGE_CANDIDATES", "en-US,german"),
        ("LANGUAGE_ID_MODE", "Always"),
        ("CHANNEL_LABELS", " , "),
        ("OUTPUT_FORMATS", "channels,pdf"),
        ("MAX_AUDIO_MB", "2048"),
        ("JOB_TIMEOUT_HOURS", "-1"),
        ("MAX_JOB_ATTEMPTS", "0"),
        ("POLL_MIN_INTERVAL_SECONDS", "soon"),
        ("POLL_LIST_THRESHOLD", "-1"),
        ("SPEECH_MAX_CONCURRENCY", "100"),
        ("SPEECH_TIMEOUT_SECONDS", "0"),
        ("SPEECH_MAX_ATTEMPTS", "50"),
        ("JOB_LEASE_SECONDS", "1"),
    ],
)
def test_malformed_settings_are_named(setting: str, value: str) -> None:
    message = rejects(setting, value)
    assert "expected" in message or "not a valid" in message


def test_storage_connection_must_exist() -> None:
    env = {"SPEECH_ENDPOINT": "http://127.0.0.1:5050"}
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.setting == "AzureWebJobsStorage"
    assert "__blobServiceUri" in str(info.value)  # points at the identity-based option


def test_storage_connection_may_be_identity_based_or_renamed() -> None:
    s = Settings.from_env(
        {
            "SPEECH_ENDPOINT": "http://127.0.0.1:5050",
            "STORAGE_CONNECTION": "AudioStorage",
            "AudioStorage__blobServiceUri": "https://acct.blob.core.windows.net",
        }
    )
    assert s.storage_connection == "AudioStorage"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**BASE, "STORAGE_CONNECTION": "Missing"})
    assert info.value.setting == "Missing"


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("SPEECH_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("SPEECH_LOCALE", "fr-FR")
    try:
        first = get_settings()
        monkeypatch.setenv("SPEECH_LOCALE", "es-ES")
        assert get_settings() is first
        assert first.speech_locale == "fr-FR"
    finally:
        get_settings.cache_clear()


def test_model_self_url_may_carry_its_api_version() -> None:
    url = "https://x.cognitiveservices.azure.com/speechtotext/models/abc"
    assert parse(SPEECH_MODEL=f"{url}?api-version=2024-11-15").speech_model == url
    rejects("SPEECH_MODEL", f"{url}?api-version=2024-11-15&sig=secret")
    rejects("SPEECH_MODEL", f"{url}?sig=secret")


@pytest.mark.parametrize("setting", ["OUTPUT_CONTAINER", "ERROR_CONTAINER"])
def test_outputs_cannot_go_into_the_input_container(setting: str) -> None:
    message = rejects(setting, "calls", env={**BASE, "INPUT_CONTAINER": "calls"})
    assert "INPUT_CONTAINER" in message
