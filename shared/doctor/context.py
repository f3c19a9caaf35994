"""What every probe works from: the app's settings, read as the app reads them, and clients
built for a quick answer (short timeouts, no retries).

The settings come from `env` through `Settings.from_env`, so the doctor sees exactly what
the app sees; a setting the app would refuse leaves `settings` None and `settings_error`
set (the ``settings`` check reports it; the others are skipped). Clients are built by each
probe that needs them (`speech_client`, `storage_clients`), never shared across threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared.errors import ConfigurationError
from shared.settings import Settings
from shared.speech_client import SpeechClient
from shared.storage import StorageClients
from shared.storage_connection import (
    DATA_USE,
    HOST_CONNECTION,
    SERVICES,
    StorageConnection,
    parse_connection,
)

__all__ = ["DoctorContext", "in_azure"]

# Each request of a check: connect quickly, answer soon, no retries (the doctor reports
# what it sees now; the app's own retries are not what is being checked).
CONNECT_TIMEOUT_S: Final = 5.0
REQUEST_TIMEOUT_S: Final = 8.0


def in_azure(env: Mapping[str, str]) -> bool:
    """True when running in Azure Functions / App Service (the platform's own variables)."""
    return any(env.get(name, "").strip() for name in ("WEBSITE_SITE_NAME", "WEBSITE_SKU"))


@dataclass
class DoctorContext:
    """The environment, the settings parsed from it (or why not), and client factories.

    `webhook_url` is this app's web hook URL when known (``--webhook-url``, else
    ``https://$WEBSITE_HOSTNAME/api/speech-webhook`` in Azure, or with the azd output
    ``AZURE_FUNCTION_APP_HOSTNAME``).
    """

    env: Mapping[str, str]
    settings: Settings | None = None
    settings_error: ConfigurationError | None = None
    webhook_url: str = ""
    extra_secrets: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, webhook_url: str = "") -> DoctorContext:
        """Parse the settings from `env` as the app does; never raises."""
        try:
            settings: Settings | None = Settings.from_env(env)
            error = None
        except ConfigurationError as exc:
            settings, error = None, exc
        # In Azure the platform names the app's host; on a developer machine an azd
        # environment (`azd env get-values`) does.
        host = next(
            (
                env[name].strip()
                for name in ("WEBSITE_HOSTNAME", "AZURE_FUNCTION_APP_HOSTNAME")
                if env.get(name, "").strip()
            ),
            "",
        )
        if not webhook_url and host:
            webhook_url = f"https://{host}/api/speech-webhook"
        return cls(env=env, settings=settings, settings_error=error, webhook_url=webhook_url)

    @property
    def in_azure(self) -> bool:
        """True when the doctor runs inside the deployed app."""
        return in_azure(self.env)

    def connection(self, name: str) -> StorageConnection:
        """The storage connection `name`, parsed (ConfigurationError when it cannot work)."""
        return parse_connection(name, self.env)

    def speech_client(self) -> SpeechClient:
        """A Speech client with the app's credentials, one try per request, short timeout."""
        settings = self._settings()
        quick = dataclasses.replace(
            settings,
            speech_max_attempts=1,
            speech_timeout_seconds=min(settings.speech_timeout_seconds, REQUEST_TIMEOUT_S),
        )
        return SpeechClient.from_settings(quick, env=self.env)

    def storage_clients_of(self, connection: StorageConnection) -> StorageClients:
        """The data clients of `connection` that fail fast: no retries, short timeouts.

        ConfigurationError when it lacks an endpoint; ValueError from the SDK for a
        malformed connection string.
        """
        connection.require_services(SERVICES, used_for=DATA_USE)
        return StorageClients.from_connection(connection, **storage_options())

    def data_connection(self) -> str:
        """The name of the app's data connection (STORAGE_CONNECTION)."""
        return self.settings.storage_connection if self.settings else HOST_CONNECTION

    def secrets(self) -> list[str]:
        """Every secret value in the settings: scrubbed from anything the doctor prints."""
        found = list(self.extra_secrets)
        if self.settings is not None:
            found += [self.settings.speech_key.reveal(), self.settings.webhook_secret.reveal()]
        for key, value in self.env.items():
            if key.lower().endswith("__clientsecret") or key == "AZURE_CLIENT_SECRET":
                found.append(value.strip())
            found += _connection_string_secrets(value)
        return [s for s in found if s]

    def _settings(self) -> Settings:
        if self.settings is None:
            raise RuntimeError("the settings are invalid")  # probes check this first
        return self.settings


def storage_options() -> dict[str, Any]:
    """Azure SDK client options for a quick, single try."""
    return {
        "retry_total": 0,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": REQUEST_TIMEOUT_S,
    }


def _connection_string_secrets(value: str) -> list[str]:
    """The account key and SAS of a connection string (each is a secret on its own)."""
    out = []
    for part in value.split(";"):
        key, _, secret = part.partition("=")
        if key.strip().lower() in ("accountkey", "sharedaccesssignature") and secret:
            out.append(secret.strip())
    return out
