"""The indexed bindings of function_app.py, as the Functions host will see them."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
import azure.storage.blob
import pytest
from azure.functions.queue import QueueMessageOutConverter
from azurefunctions.extensions.bindings import blob as blob_ext

from shared.errors import ConfigurationError
from shared.settings import get_settings, iter_settings

ROOT = Path(__file__).resolve().parent.parent

CONFIGURED = {
    "SPEECH_ENDPOINT": "http://127.0.0.1:5050",
    "SPEECH_KEY": "local-dev-key",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "INPUT_CONTAINER": "audio-input",
    "OUTPUT_CONTAINER": "transcripts",
    "ERROR_CONTAINER": "transcription-errors",
    "COMPLETION_QUEUE": "transcription-completions",
    "POLL_SCHEDULE": "*/10 * * * * *",
    "SWEEP_SCHEDULE": "0 */30 * * * *",
}
# Every app setting is cleared first: none may leak in from the caller's shell.
APP_SETTINGS = tuple(spec.env for spec in iter_settings())


def index(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, Any]:
    """Import function_app afresh under `env`; name -> (bindings, user function)."""
    for name in APP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    monkeypatch.delitem(sys.modules, "function_app", raising=False)
    try:
        module = importlib.import_module("function_app")
        functions = module.app.get_functions()  # once per app object
    finally:
        get_settings.cache_clear()
    return {
        f.get_function_name(): (
            json.loads(f.get_function_json())["bindings"],
            f.get_user_function(),
        )
        for f in functions
    }


def only(bindings: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(bindings) == 1, bindings
    return bindings[0]


def test_functions_with_setting_references(monkeypatch: pytest.MonkeyPatch) -> None:
    fns = index(monkeypatch, CONFIGURED)
    assert set(fns) == {
        "submit",
        "poll",
        "complete",
        "sweep",
        "speech_webhook",
        "doctor",
        *OPS_ROUTES,
    }

    submit = only(fns["submit"][0])
    assert submit["type"] == "blobTrigger"
    assert submit["direction"] == "IN"
    assert submit["path"] == "%INPUT_CONTAINER%/{name}"
    assert submit["connection"] == "AzureWebJobsStorage"
    assert submit["source"] == "LogsAndContainerScan"

    poll = only(fns["poll"][0])
    assert poll["type"] == "timerTrigger"
    assert poll["schedule"] == "%POLL_SCHEDULE%"
    assert poll["runOnStartup"] is False

    sweep = only(fns["sweep"][0])
    assert sweep["type"] == "timerTrigger"
    assert sweep["schedule"] == "%SWEEP_SCHEDULE%"

    complete = only(fns["complete"][0])
    assert complete["type"] == "queueTrigger"
    assert complete["queueName"] == "%COMPLETION_QUEUE%"
    assert complete["connection"] == "AzureWebJobsStorage"

    hook_bindings = fns["speech_webhook"][0]
    trigger = next(b for b in hook_bindings if b["type"] == "httpTrigger")
    assert trigger["route"] == "speech-webhook"
    assert sorted(m.upper() for m in trigger["methods"]) == ["GET", "POST"]
    # The Speech service cannot send a function key: callbacks are authenticated by signature.
    assert trigger["authLevel"] == "ANONYMOUS"
    assert any(b["type"] == "http" and b["direction"] == "OUT" for b in hook_bindings)
    # Its completion message goes through a queue output to the completion queue, so the
    # host wakes `complete` at once (SharedQueueWatcher) instead of at its next poll.
    out = next(b for b in hook_bindings if b["type"] == "queue")
    assert out["direction"] == "OUT"
    assert (out["queueName"], out["connection"]) == (complete["queueName"], complete["connection"])

    doctor = next(b for b in fns["doctor"][0] if b["type"] == "httpTrigger")
    assert doctor["route"] == "doctor"
    assert [m.upper() for m in doctor["methods"]] == ["GET"]
    # The report names endpoints, accounts and identities: the master key only.
    assert doctor["authLevel"] == "ADMIN"

    # The operator view lists recording names and starts retries: function keys, never open.
    for name, (route, method) in OPS_ROUTES.items():
        trigger = next(b for b in fns[name][0] if b["type"] == "httpTrigger")
        assert trigger["route"] == route
        assert [m.upper() for m in trigger["methods"]] == [method]
        assert trigger["authLevel"] == "FUNCTION"


OPS_ROUTES = {
    "ops_jobs": ("jobs", "GET"),
    "ops_job": ("jobs/{key}", "GET"),
    "ops_retry": ("jobs/{key}/retry", "POST"),
    "ops_stats": ("stats", "GET"),
    "ops_status": ("status", "GET"),
}


def test_blob_parameter_is_the_sdk_type(monkeypatch: pytest.MonkeyPatch) -> None:
    fns = index(monkeypatch, CONFIGURED)
    bindings, submit = fns["submit"]
    param = inspect.signature(submit).parameters[only(bindings)["name"]]
    # The worker binds an SDK client (read ranges), not InputStream/bytes (whole blob in memory).
    assert param.annotation is blob_ext.BlobClient
    assert issubclass(param.annotation, azure.storage.blob.BlobClient)
    _, complete = fns["complete"]
    assert "msg" in inspect.signature(complete).parameters
    # The worker checks an output's annotation when it loads the function: azure-functions
    # accepts typing.List[str] for several queue messages, but not list[str].
    bindings, hook = fns["speech_webhook"]
    out = next(b for b in bindings if b["type"] == "queue")
    annotation = inspect.signature(hook).parameters[out["name"]].annotation
    assert typing.get_origin(annotation) is func.Out
    (message_type,) = typing.get_args(annotation)
    assert QueueMessageOutConverter.check_output_type_annotation(message_type)


def test_event_grid_source_and_separate_storage_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        **CONFIGURED,
        "BLOB_TRIGGER_SOURCE": "EventGrid",
        "STORAGE_CONNECTION": "AudioStorage",
        "AudioStorage": "UseDevelopmentStorage=true",
    }
    fns = index(monkeypatch, env)
    submit = only(fns["submit"][0])
    assert submit["source"] == "EventGrid"
    assert submit["connection"] == "AudioStorage"
    assert only(fns["complete"][0])["connection"] == "AudioStorage"


def test_unset_settings_index_with_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # The host cannot resolve %X% for a setting that does not exist: the default is written in.
    env = {k: CONFIGURED[k] for k in ("SPEECH_ENDPOINT", "SPEECH_KEY", "AzureWebJobsStorage")}
    fns = index(monkeypatch, env)
    assert only(fns["submit"][0])["path"] == "audio-input/{name}"
    assert only(fns["poll"][0])["schedule"] == "0 * * * * *"
    assert only(fns["sweep"][0])["schedule"] == "0 0 * * * *"
    assert only(fns["complete"][0])["queueName"] == "transcription-completions"


@pytest.mark.parametrize(
    ("setting", "value"),
    [("POLL_SCHEDULE", "every minute"), ("INPUT_CONTAINER", "Bad_Name"), ("SPEECH_ENDPOINT", "")],
)
def test_a_bad_setting_fails_indexing_naming_it(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        index(monkeypatch, {**CONFIGURED, setting: value})
    assert info.value.setting == setting


IDENTITY_ONLY = {
    "SPEECH_ENDPOINT": "https://my-speech.cognitiveservices.azure.com",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
    "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net/",
    "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/",
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
}


def clean_environment(**values: str) -> dict[str, str]:
    """The process environment without any app or storage setting, plus `values`."""
    drop = set(APP_SETTINGS) | {"WEBSITE_SKU", "AZURE_CLIENT_ID"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.lower().startswith("azurewebjobsstorage")
    }
    return {**env, **values}


def test_the_app_indexes_with_identity_only_settings_on_flex() -> None:
    """What Azure gives the app (tests/infra): no key, no connection string, Flex."""
    probe = (
        "import json, function_app; "
        "fns = {f.get_function_name(): json.loads(f.get_function_json())['bindings'] "
        "for f in function_app.app.get_functions()}; "
        "print(json.dumps({n: b[0] for n, b in fns.items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=clean_environment(**IDENTITY_ONLY, WEBSITE_SKU="FlexConsumption"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    bindings = json.loads(out.stdout)
    assert bindings["submit"]["source"] == "EventGrid"  # the Flex default, no setting needed
    assert bindings["submit"]["connection"] == "AzureWebJobsStorage"
    assert bindings["complete"]["connection"] == "AzureWebJobsStorage"


def test_blob_trigger_source_follows_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_SKU", "FlexConsumption")
    assert only(index(monkeypatch, CONFIGURED)["submit"][0])["source"] == "EventGrid"
    monkeypatch.setenv("WEBSITE_SKU", "ElasticPremium")
    assert only(index(monkeypatch, CONFIGURED)["submit"][0])["source"] == "LogsAndContainerScan"


def test_a_trigger_connection_the_sdk_binding_cannot_use_fails_indexing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**CONFIGURED, "STORAGE_CONNECTION": "AudioStorage", "AudioStorage__accountName": "acct"}
    with pytest.raises(ConfigurationError) as info:
        index(monkeypatch, env)
    assert info.value.setting == "AudioStorage__accountName"
    assert "AudioStorage__blobServiceUri" in str(info.value)  # what to set instead


def test_cold_start_imports_stay_lean() -> None:
    # Indexing loads only the glue; each function imports its own module when it first runs.
    # (azure.identity is not checked: the SDK-type blob extension itself imports it.)
    probe = (
        "import sys, function_app; "
        "print(sorted(m for m in ('httpx', 'azure.data.tables', 'shared.submit', "
        "'shared.speech_client', 'shared.transcripts', 'numpy') if m in sys.modules))"
    )
    env = {**os.environ, **CONFIGURED}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]", out.stdout
