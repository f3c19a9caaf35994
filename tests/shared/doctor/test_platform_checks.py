"""Settings and platform checks (no servers): trigger source on Flex, trigger identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.doctor import PROBES, run_doctor
from shared.doctor.__main__ import main, settings_environment
from shared.doctor.context import DoctorContext
from shared.doctor.platform_checks import blob_trigger, settings_valid
from shared.doctor.report import Check, Status
from shared.doctor.runner import Probe

BASE = {
    "SPEECH_ENDPOINT": "http://127.0.0.1:1",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
IDENTITY = {
    "SPEECH_ENDPOINT": "https://s.cognitiveservices.azure.com",
    **{
        f"AzureWebJobsStorage__{s}ServiceUri": f"https://acct.{s}.core.windows.net"
        for s in ("blob", "queue", "table")
    },
}


def checks(env: dict[str, str]) -> dict[str, Check]:
    ctx = DoctorContext.from_env(env)
    found = [*settings_valid(ctx), *blob_trigger(ctx)]
    return {c.name: c for c in found}


def test_flex_consumption_runs_the_trigger_from_event_grid_by_default() -> None:
    trigger = checks({**BASE, "WEBSITE_SKU": "FlexConsumption"})["platform.trigger"]
    assert trigger.status is Status.OK
    assert "EventGrid (the default on Flex Consumption)" in trigger.message
    assert "az eventgrid system-topic event-subscription" in trigger.message  # how to look


def test_scanning_on_flex_consumption_fails_naming_the_setting() -> None:
    env = {**BASE, "WEBSITE_SKU": "FlexConsumption", "BLOB_TRIGGER_SOURCE": "LogsAndContainerScan"}
    trigger = checks(env)["platform.trigger"]
    assert trigger.status is Status.FAIL
    assert trigger.setting == "BLOB_TRIGGER_SOURCE"
    assert "delete the setting" in trigger.fix


def test_event_grid_elsewhere_is_a_warning() -> None:
    trigger = checks({**BASE, "BLOB_TRIGGER_SOURCE": "EventGrid"})["platform.trigger"]
    assert trigger.status is Status.WARN
    assert "devhost scans" in trigger.message  # not in Azure


def test_identity_based_trigger_connection_locally_is_a_warning() -> None:
    binding = checks(IDENTITY)["platform.binding"]
    assert binding.status is Status.WARN
    assert "UseDevelopmentStorage=true" in binding.fix


def test_trigger_binding_identity_differs_from_azure_client_id_in_azure() -> None:
    env = {**IDENTITY, "AZURE_CLIENT_ID": CLIENT_ID, "WEBSITE_SITE_NAME": "func-x"}
    binding = checks(env)["platform.binding"]
    assert binding.status is Status.WARN
    assert binding.setting == "AzureWebJobsStorage__credential"
    assert f"AzureWebJobsStorage__clientId={CLIENT_ID}" in binding.fix
    env = {
        **env,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    }
    binding = checks(env)["platform.binding"]
    assert binding.status is Status.OK
    assert CLIENT_ID in binding.message


def test_invalid_settings_fail_naming_the_setting_and_skip_the_rest() -> None:
    report = run_doctor({**BASE, "POLL_SCHEDULE": "every minute"})
    by_name = {c.name: c for c in report.checks}
    assert by_name["settings"].status is Status.FAIL
    assert by_name["settings"].setting == "POLL_SCHEDULE"
    others = [c for c in report.checks if c.name != "settings"]
    assert others
    assert {c.status for c in others} == {Status.SKIP}
    assert not report.ok


def test_every_probe_finishes_within_30_seconds() -> None:
    assert all(isinstance(p, Probe) and p.timeout <= 25.0 for p in PROBES)


def test_local_settings_fill_in_what_the_environment_does_not_set(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"SPEECH_KEY": "from-file", "INPUT_CONTAINER": "x"}}))
    merged, source = settings_environment({"INPUT_CONTAINER": "from-env"}, path)
    assert merged == {"SPEECH_KEY": "from-file", "INPUT_CONTAINER": "from-env"}
    assert str(path) in source


def test_an_unreadable_settings_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert main(["--settings-file", str(path)], env={}) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_apps_web_hook_url_comes_from_the_platform_or_the_azd_environment() -> None:
    azd = {**BASE, "AZURE_FUNCTION_APP_HOSTNAME": "func-x.azurewebsites.net"}
    assert DoctorContext.from_env(azd).webhook_url == (
        "https://func-x.azurewebsites.net/api/speech-webhook"
    )
    azure = {**azd, "WEBSITE_HOSTNAME": "func-y.azurewebsites.net"}
    assert DoctorContext.from_env(azure).webhook_url.startswith("https://func-y.")
    given = DoctorContext.from_env(azure, webhook_url="https://mine/api/speech-webhook")
    assert given.webhook_url == "https://mine/api/speech-webhook"
    assert DoctorContext.from_env(BASE).webhook_url == ""
