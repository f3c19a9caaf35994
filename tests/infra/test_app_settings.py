"""The app settings the template sets make a valid configuration of this app, in every mode.

The settings are built in ``infra/main.bicep`` (``appSettings``) plus ``WEBHOOK_SECRET``,
which ``modules/function.bicep`` adds from a secure parameter. Module outputs (endpoints,
the identity's client id...) become placeholders; `Settings.from_env` then validates the
mapping as the app does at start-up.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings, iter_settings
from shared.storage import blob_service_from_setting
from tests.infra import bicep

BYOS_ID = (
    "/subscriptions/0000/resourceGroups/rg-byos/providers/Microsoft.Storage/storageAccounts/stbyos"
)
MODES: dict[str, dict[str, Any]] = {
    "default": {},
    "vnet": {"vnetEnabled": True},
    "byos": {"speechByosStorageAccountId": BYOS_ID},
    "vnet+byos": {"vnetEnabled": True, "speechByosStorageAccountId": BYOS_ID},
}

# Settings read by the Functions host or the Azure SDKs, not by shared/settings.py.
PLATFORM_SETTINGS = frozenset(
    {
        "APPLICATIONINSIGHTS_CONNECTION_STRING",  # host: where telemetry goes
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # host: Entra auth for telemetry
        "AZURE_CLIENT_ID",  # azure-identity: which user-assigned identity to use
    }
)
# `<connection>__<property>` settings of an identity-based connection (host and shared/storage.py).
CONNECTION_PROPERTIES = frozenset(
    {"blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId"}
)
# Settings the template sets before the app reads them (work landing in parallel), none
# now. test_pending_settings_are_still_pending fails as soon as the app reads one: then
# delete it here, and the settings tests below validate its value like any other.
PENDING_APP_SETTINGS: frozenset[str] = frozenset()
# Flex Consumption rejects these (the runtime is in functionAppConfig; no package setting).
FLEX_FORBIDDEN = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "AzureWebJobsStorage",  # a connection string: the template is identity-based
    }
)


def app_settings(mode: str) -> dict[str, Any]:
    """The settings the template gives the app in `mode` (values may be `bicep.Opaque`)."""
    settings = bicep.Evaluator(bicep.main(), MODES[mode]).variable("appSettings")
    settings.update(_secret_settings())
    return settings


def _secret_settings() -> dict[str, Any]:
    """What function.bicep adds to the settings it is given, with a secret passed in."""
    evaluator = bicep.Evaluator(bicep.module("function"), {"webhookSecret": "s3cret"})
    return dict(evaluator.variable("secretSettings"))


def as_environment(settings: dict[str, Any]) -> dict[str, str]:
    """App settings as the app sees them: strings, placeholders for expressions.

    A storage endpoint output (``storage.outputs.blobEndpoint``...) is an https URL in
    Azure, and the app checks that it is one: its placeholder becomes the account's host.
    """
    env = {}
    for name, value in settings.items():
        text = value.placeholder() if isinstance(value, bicep.Opaque) else str(value)
        service = re.fullmatch(r".+__(blob|queue|table)ServiceUri", name)
        if service and isinstance(value, bicep.Opaque):
            text = f"https://{text.replace('-', '')[:24]}.{service.group(1)}.core.windows.net/"
        env[name] = text
    return env


def app_setting_names() -> set[str]:
    """Every setting the app reads: the env names of the settings' declarations."""
    return {spec.env for spec in iter_settings()}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_template_settings_are_a_valid_app_configuration(mode):
    env = as_environment(app_settings(mode))
    settings = Settings.from_env(env)  # raises ConfigurationError naming a bad setting
    assert settings.blob_trigger_source == "EventGrid"  # the only source on Flex Consumption
    assert settings.storage_connection == "AzureWebJobsStorage"
    assert not settings.uses_key  # Entra ID for Speech
    assert settings.input_container == "audio-input"
    assert settings.output_container == "transcripts"
    assert settings.error_container == "transcription-errors"
    assert settings.jobs_table == "transcriptionjobs"
    assert settings.completion_queue == "transcription-completions"
    assert settings.poll_schedule == "0 */5 * * * *"
    assert settings.speech_endpoint.startswith("https://")
    assert settings.speech_endpoint.endswith(".cognitiveservices.azure.com")
    assert settings.webhook_secret.reveal() == "s3cret"
    # vnet: storage refuses SAS, Speech reads with its identity; BYOS: results without SAS
    assert settings.speech_storage_access == ("identity" if "vnet" in mode else "sas")
    byos = "byos" in mode
    assert settings.speech_results_connection == ("SpeechResultsStorage" if byos else "")


def test_the_validation_catches_a_bad_template_value():
    """The check above has teeth: a malformed value from the template is refused."""
    env = as_environment(app_settings("default"))
    env["POLL_SCHEDULE"] = "*/5 * * * *"  # five fields: not NCRONTAB
    with pytest.raises(ConfigurationError, match="POLL_SCHEDULE"):
        Settings.from_env(env)
    env = as_environment(app_settings("default"))
    del env["AzureWebJobsStorage__blobServiceUri"]
    for name in [n for n in env if n.startswith("AzureWebJobsStorage__")]:
        del env[name]
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage"):
        Settings.from_env(env)


def test_container_table_and_queue_settings_follow_the_parameters():
    evaluator = bicep.Evaluator(
        bicep.main(),
        {
            "inputContainerName": "calls-in",
            "outputContainerName": "calls-out",
            "errorContainerName": "calls-err",
            "jobsTableName": "calljobs",
            "speechQuotaTableName": "callquota",
            "completionQueueName": "call-done",
            "pollSchedule": "0 */2 * * * *",
        },
    )
    settings = Settings.from_env(as_environment(evaluator.variable("appSettings")))
    assert (settings.input_container, settings.output_container, settings.error_container) == (
        "calls-in",
        "calls-out",
        "calls-err",
    )
    assert (settings.jobs_table, settings.completion_queue) == ("calljobs", "call-done")
    assert settings.speech_quota_table == "callquota"
    assert settings.speech_rate_limit_scope == "app"  # instances share one quota
    assert settings.poll_schedule == "0 */2 * * * *"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_setting_is_known_to_the_app_or_the_platform(mode):
    settings = app_settings(mode)
    known = app_setting_names() | PENDING_APP_SETTINGS | PLATFORM_SETTINGS
    connections = {"AzureWebJobsStorage"}
    if "SPEECH_RESULTS_CONNECTION" in settings:
        connections.add(str(settings["SPEECH_RESULTS_CONNECTION"]))
    unknown = []
    for name in settings:
        prefix, _, prop = name.partition("__")
        if prop:
            if prefix not in connections or prop not in CONNECTION_PROPERTIES:
                unknown.append(name)
        elif name not in known:
            unknown.append(name)
    assert unknown == [], f"settings neither the app nor the platform reads: {unknown}"
    assert not FLEX_FORBIDDEN & set(settings), "settings Flex Consumption does not accept"


def test_pending_settings_are_still_pending():
    """Reminder: once the app reads a pending setting, it must leave PENDING_APP_SETTINGS."""
    now_known = PENDING_APP_SETTINGS & app_setting_names()
    assert not now_known, f"shared/settings.py reads {sorted(now_known)}: drop them from PENDING"


def test_app_setting_names_are_read_from_the_app():
    names = app_setting_names()
    assert {"SPEECH_ENDPOINT", "INPUT_CONTAINER", "POLL_SCHEDULE", "WEBHOOK_SECRET"} <= names
    assert "SPEECH_KEY" in names  # the app accepts it; the template must not set it


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_connection_uses_the_user_assigned_identity(mode):
    settings = app_settings(mode)
    client_id = bicep.Opaque("identity.outputs.clientId")
    assert settings["AZURE_CLIENT_ID"] == client_id
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"Authorization=AAD;ClientId={client_id.placeholder()}"
    )
    connections = {name.partition("__")[0] for name in settings if "__" in name}
    for connection in connections:
        assert settings[f"{connection}__credential"] == "managedidentity", connection
        assert settings[f"{connection}__clientId"] == client_id, connection
        assert f"{connection}__blobServiceUri" in settings, connection
    host = {
        "blobServiceUri": "storage.outputs.blobEndpoint",
        "queueServiceUri": "storage.outputs.queueEndpoint",
        "tableServiceUri": "storage.outputs.tableEndpoint",
    }
    for prop, output in host.items():
        assert settings[f"AzureWebJobsStorage__{prop}"] == bicep.Opaque(output)
    assert "SPEECH_KEY" not in settings


def test_identity_based_settings_only_in_their_modes():
    assert "SPEECH_STORAGE_ACCESS" not in app_settings("default")
    assert app_settings("vnet")["SPEECH_STORAGE_ACCESS"] == "identity"
    assert "SPEECH_RESULTS_CONNECTION" not in app_settings("default")
    byos = app_settings("byos")
    assert byos["SPEECH_RESULTS_CONNECTION"] == "SpeechResultsStorage"
    assert byos["SpeechResultsStorage__blobServiceUri"].startswith("https://")


def test_webhook_secret_reaches_the_app_only_through_a_secure_parameter():
    main_params = bicep.main()["parameters"]
    assert {"type": "secure"} in main_params["webhookSecret"]["decorators"]
    function_params = bicep.module("function")["parameters"]
    assert {"type": "secure"} in function_params["webhookSecret"]["decorators"]
    passed = bicep.main()["modules"]["function"]["config"]["params"]
    assert passed["webhookSecret"] == "webhookSecret"
    assert "WEBHOOK_SECRET" not in bicep.Evaluator(bicep.main()).variable("appSettings")
    no_secret = bicep.Evaluator(bicep.module("function"), {"webhookSecret": ""})
    assert no_secret.variable("secretSettings") == {}


def test_function_app_gets_the_settings_and_runs_python_on_flex():
    function = bicep.module("function")
    passed = bicep.main()["modules"]["function"]["config"]["params"]
    assert passed["appSettings"] == "appSettings"
    (config,) = bicep.resources_of_type(function, "Microsoft.Web/sites/config").values()
    body = bicep.body(config)
    assert body["name"] == "appsettings"
    assert body["properties"] == {
        "function": {
            "type": "union",
            "parameters": {"arg_1": "appSettings", "arg_2": "secretSettings"},
        }
    }
    (plan,) = bicep.resources_of_type(function, "Microsoft.Web/serverfarms").values()
    assert bicep.body(plan)["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    (site,) = bicep.resources_of_type(function, "Microsoft.Web/sites").values()
    app_config = bicep.body(site)["properties"]["functionAppConfig"]
    assert app_config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert passed["pythonVersion"] == "pythonVersion"
    storage = app_config["deployment"]["storage"]
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert bicep.body(site)["identity"]["type"] == "UserAssigned"


@pytest.mark.parametrize("mode", ["byos", "vnet+byos"])
def test_the_results_connection_reaches_the_byos_account(mode):
    """The app builds its results client from the template's settings alone (blob only)."""
    env = as_environment(app_settings(mode))
    settings = Settings.from_env(env)
    account = blob_service_from_setting(env, settings.speech_results_connection)
    uri = env[f"{settings.speech_results_connection}__blobServiceUri"]
    assert account.url.rstrip("/") == uri.rstrip("/")
    assert type(account.credential).__name__ == "ManagedIdentityCredential"
