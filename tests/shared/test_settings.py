"""Settings: defaults, parsing, and a clear ConfigurationError naming every bad setting."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.output_names import OUTPUT_FORMATS
from shared.secret import Secret
from shared.settings import Settings, get_settings, iter_settings
from shared.speech_models import build_submit_body

ROOT = Path(__file__).resolve().parents[2]
# Settings of the Functions host itself that local.settings.sample.json also holds (the
# storage connection is checked by the app, but its name is a setting: STORAGE_CONNECTION).
HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags", "AzureWebJobsStorage"}

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
    assert s.output_formats == OUTPUT_FORMATS
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
        ("SPEECH_ENDPOINT", "http://[::1"),
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
        ("DIARIZATION_MAX_SPEAKERS", "36"),
        ("TIME_TO_LIVE_HOURS", "745"),
        ("LANGUAGE_CANDIDATES", ",".join(["en-US"] * 11)),
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
        ("SPEECH_STORAGE_ACCESS", "managed-identity"),
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
            "AudioStorage__queueServiceUri": "https://acct.queue.core.windows.net",
            "AudioStorage__tableServiceUri": "https://acct.table.core.windows.net",
        }
    )
    assert s.storage_connection == "AudioStorage"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**BASE, "STORAGE_CONNECTION": "Missing"})
    assert info.value.setting == "Missing"


def test_storage_access_defaults_to_sas_and_accepts_identity() -> None:
    assert parse().speech_storage_access == "sas"
    assert parse(SPEECH_STORAGE_ACCESS="Identity").speech_storage_access == "identity"
    assert "sas, identity" in rejects("SPEECH_STORAGE_ACCESS", "msi")


def test_results_connection_must_name_a_connection_that_reaches_blobs() -> None:
    assert parse().speech_results_connection == ""
    for form in (
        {"Results": "DefaultEndpointsProtocol=https;AccountName=r;AccountKey=a2V5"},
        {"Results__blobServiceUri": "https://r.blob.core.windows.net"},
        {"Results__serviceUri": "https://r.blob.core.windows.net"},  # one service: blob
    ):
        s = parse(SPEECH_RESULTS_CONNECTION="Results", **form)
        assert s.speech_results_connection == "Results"
    # only a client id: nothing says which account to read
    message = rejects(
        "SPEECH_RESULTS_CONNECTION", "Results", env={**BASE, "Results__clientId": "1234"}
    )
    assert "Results__blobServiceUri" in message  # says what to set
    assert "'Results'" in message  # and names the connection it looked for
    rejects("SPEECH_RESULTS_CONNECTION", "Missing")


IDENTITY_ONLY = {
    "SPEECH_ENDPOINT": "https://my-speech.cognitiveservices.azure.com",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
    "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net/",
    "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/",
}


def test_identity_only_settings_are_a_valid_configuration() -> None:
    s = Settings.from_env(IDENTITY_ONLY)
    assert not s.uses_key
    assert s.storage_connection == "AzureWebJobsStorage"


def test_a_storage_connection_the_blob_trigger_cannot_use_is_refused_at_start() -> None:
    # `__accountName` works only for AzureWebJobsStorage: the host and the trigger's SDK
    # binding would send every recording to poison at invocation time.
    env = {
        "SPEECH_ENDPOINT": "http://127.0.0.1:5050",
        "STORAGE_CONNECTION": "AudioStorage",
        "AudioStorage__accountName": "acct",
    }
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.setting == "AudioStorage__accountName"
    assert "AudioStorage__blobServiceUri" in str(info.value)
    # ...and so is an identity the SDK binding ignores.
    env = {**IDENTITY_ONLY, "AzureWebJobsStorage__managedIdentityResourceId": "/sub/x/id"}
    del env["AzureWebJobsStorage__clientId"]
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.setting == "AzureWebJobsStorage__managedIdentityResourceId"


def test_the_data_connection_needs_all_three_endpoints() -> None:
    env = dict(IDENTITY_ONLY)
    del env["AzureWebJobsStorage__tableServiceUri"]
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.setting == "AzureWebJobsStorage__tableServiceUri"


@pytest.mark.parametrize("sku", ["FlexConsumption", "flexconsumption"])
def test_blob_trigger_source_defaults_to_event_grid_on_flex_consumption(sku: str) -> None:
    assert parse(WEBSITE_SKU=sku).blob_trigger_source == "EventGrid"


@pytest.mark.parametrize("sku", ["", "Dynamic", "ElasticPremium"])
def test_blob_trigger_source_defaults_to_scanning_elsewhere(sku: str) -> None:
    assert parse(WEBSITE_SKU=sku).blob_trigger_source == "LogsAndContainerScan"


def test_an_explicit_blob_trigger_source_wins_on_flex_consumption() -> None:
    s = parse(WEBSITE_SKU="FlexConsumption", BLOB_TRIGGER_SOURCE="LogsAndContainerScan")
    assert s.blob_trigger_source == "LogsAndContainerScan"  # the doctor reports it


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


def test_other_accepted_spellings() -> None:
    s = parse(
        BLOB_TRIGGER_SOURCE="Polling",
        OUTPUT_FORMATS=" ALL ",
        SPEECH_RATE_LIMIT="OFF",
        WORD_TIMESTAMPS="off",
        PROFANITY_FILTER_MODE="tags",
        LANGUAGE_ID_MODE="SINGLE",
        LANGUAGE_CANDIDATES=" en-US , , de-DE ,",
        TIME_TO_LIVE_HOURS=" 744 ",
    )
    assert s.blob_trigger_source == "LogsAndContainerScan"
    assert s.output_formats == OUTPUT_FORMATS
    assert s.speech_rate_limit is None
    assert s.word_timestamps is False
    assert s.profanity_filter_mode == "Tags"
    assert s.language_id_mode == "Single"
    assert s.language_candidates == ("en-US", "de-DE")
    assert s.time_to_live_hours == 744
    assert parse(SPEECH_RATE_LIMIT="0").speech_rate_limit is None


@pytest.mark.parametrize(
    "spec", [s for s in iter_settings() if not s.required], ids=lambda s: s.env
)
def test_blank_or_the_documented_default_text_means_the_default(spec: Any) -> None:
    default = parse()
    assert parse(**{spec.env: " \t"}) == default
    # default_text is what the docs show: written out, it must mean the default too.
    if spec.default_text:
        assert parse(**{spec.env: spec.default_text}) == default


def test_every_setting_is_in_the_sample_local_settings_and_nothing_else() -> None:
    values = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    declared = [spec.env for spec in iter_settings()]
    assert len(declared) == len(set(declared)), "an environment name is declared twice"
    assert sorted(set(declared) - values.keys()) == [], "missing from local.settings.sample.json"
    assert sorted(values.keys() - set(declared) - HOST_SETTINGS) == [], "not a setting of the app"
    Settings.from_env(values)  # and the sample itself is valid


def test_every_setting_has_a_meaning() -> None:
    for spec in iter_settings():
        assert spec.meaning.strip(), spec.env


def test_settings_are_immutable_hashable_and_equal_by_value() -> None:
    first, second = parse(SPEECH_KEY="k"), parse(SPEECH_KEY="k")
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse(SPEECH_KEY="other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.time_to_live_hours = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"time_to_live_hours": 5}, "TIME_TO_LIVE_HOURS"),
        ({"punctuation_mode": "automatic"}, "PUNCTUATION_MODE"),  # only the env is lenient
        ({"output_container": "audio-input"}, "OUTPUT_CONTAINER"),
        ({"speech_endpoint": "not a url"}, "SPEECH_ENDPOINT"),
        ({"speech_key": "plain text"}, "SPEECH_KEY"),
        ({"output_formats": frozenset({"pdf"})}, "OUTPUT_FORMATS"),
        ({"speech_timeout_seconds": True}, "SPEECH_TIMEOUT_SECONDS"),
    ],
)
def test_copies_and_keyword_construction_are_checked_too(
    changes: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        dataclasses.replace(parse(), **changes)
    assert info.value.setting == setting
    with pytest.raises(ConfigurationError) as info:
        Settings(**{"speech_endpoint": "https://x", **changes})
    assert info.value.setting == setting


def test_a_valid_copy_keeps_the_rest() -> None:
    original = parse(SPEECH_KEY="k", TIME_TO_LIVE_HOURS="12")
    copy = dataclasses.replace(original, webhook_secret=Secret("s"))
    assert copy.webhook_secret.reveal() == "s"
    assert (copy.speech_key, copy.time_to_live_hours) == (original.speech_key, 12)


@pytest.mark.parametrize(
    "env",
    [
        {"TIME_TO_LIVE_HOURS": "6"},
        {"TIME_TO_LIVE_HOURS": "744"},
        {"PUNCTUATION_MODE": "none", "PROFANITY_FILTER_MODE": "removed"},
        {"PUNCTUATION_MODE": "dictated", "PROFANITY_FILTER_MODE": "tags"},
        {"DIARIZATION_ENABLED": "true", "DIARIZATION_MAX_SPEAKERS": "35"},
        {"LANGUAGE_CANDIDATES": "en-US,de-DE", "LANGUAGE_ID_MODE": "single"},
        {"LANGUAGE_CANDIDATES": ",".join(["en-US"] * 10)},
    ],
)
def test_what_the_settings_accept_the_request_body_accepts(env: dict[str, str]) -> None:
    s = parse(**env)
    body = build_submit_body(
        display_name="x",
        content_url="https://acct.blob.core.windows.net/c/x.wav?sig=x",
        locale=s.speech_locale,
        channels=[0],
        time_to_live_hours=s.time_to_live_hours,
        punctuation_mode=s.punctuation_mode,
        profanity_filter_mode=s.profanity_filter_mode,
        diarization_max_speakers=s.diarization_max_speakers if s.diarization_enabled else None,
        language_candidates=s.language_candidates,
        language_id_mode=s.language_id_mode,
    )
    assert body["properties"]["timeToLiveHours"] == s.time_to_live_hours


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("0 */5 * * *", "has 5 fields"),
        ("0 0 0 * * 7", "use 0 or Sun for Sunday"),
        ("0 0 0 L * *", "the day field"),
        ("0 61 * * * *", "the minute field"),
        ("0 0 9 1-7 * Mon#1", "the day-of-week field"),
    ],
)
def test_schedules_are_checked_as_ncrontab_reads_them(schedule: str, says: str) -> None:
    """The Functions host refuses these at start-up; the app names the setting first."""
    with pytest.raises(ConfigurationError) as info:
        parse(POLL_SCHEDULE=schedule)
    assert info.value.setting == "POLL_SCHEDULE"
    assert says in str(info.value)


@pytest.mark.parametrize("schedule", ["*/10 * * * * *", "0 0 9 1-7 * Mon", "0 30 8 * Jan-Mar sat"])
def test_valid_ncrontab_schedules_are_accepted(schedule: str) -> None:
    assert parse(SWEEP_SCHEDULE=schedule).sweep_schedule == schedule
