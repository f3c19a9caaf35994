"""How a Speech API request proves who sends it: a resource key or a Microsoft Entra token.

Two implementations of one small interface (`SpeechAuth`), so the transport does not care
which is in use:

* `KeyAuth` sends ``Ocp-Apim-Subscription-Key``. The key is held as a `Secret`, so neither
  this object nor anything that prints it shows the value.
* `TokenAuth` sends ``Authorization: Bearer <token>`` for scope `COGNITIVE_SERVICES_SCOPE`
  from any azure-core `TokenCredential`. The token is cached until five minutes before it
  expires, so no request leaves with a dying token, and dropped when the service answers
  401 (it may have been revoked): the next request fetches a new one.

`default_credential` builds the app's credential for Speech. Which identity it signs in
as is decided by `shared.storage_connection.identity_for_speech`: ``AZURE_CLIENT_ID``, else
the identity of the app's storage connection (``__credential=managedidentity`` +
``__clientId``: a user-assigned managed identity), else DefaultAzureCredential (the
system-assigned identity in Azure, a developer sign-in locally). azure.identity is imported
only when it is built (`shared.credentials`): it is heavy and unused with a key (cold start).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

from shared.credentials import build_credential
from shared.errors import SpeechAuthError
from shared.secret import Secret
from shared.storage_connection import HOST_CONNECTION, identity_for_speech

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "KeyAuth",
    "SpeechAuth",
    "TokenAuth",
    "auth_for",
    "default_credential",
]

logger = logging.getLogger(__name__)

COGNITIVE_SERVICES_SCOPE: Final = "https://cognitiveservices.azure.com/.default"
# Refresh a token this long before it expires, so no request goes out with a dying token.
TOKEN_REFRESH_MARGIN_S: Final = 300.0
KEY_HEADER: Final = "Ocp-Apim-Subscription-Key"


class SpeechAuth(Protocol):
    """Credentials for Speech API requests (never for result downloads: those carry a SAS)."""

    kind: str  # "key" or "token": shown in reprs instead of the value

    def headers(self, operation: str) -> dict[str, str]:
        """The headers that authenticate one request; SpeechAuthError when none can be had."""
        ...

    def unauthorized(self) -> None:
        """The service answered 401 to a request sent with these credentials."""
        ...

    def secrets(self) -> list[str]:
        """Values that must never appear in a message or a log (scrubbed from error texts)."""
        ...


class KeyAuth:
    """The Speech resource key in ``Ocp-Apim-Subscription-Key``."""

    kind = "key"

    def __init__(self, key: Secret) -> None:
        if not key:
            raise ValueError("KeyAuth needs a non-empty key")
        self._key = key

    def headers(self, operation: str) -> dict[str, str]:
        """The key header."""
        return {KEY_HEADER: self._key.reveal()}

    def unauthorized(self) -> None:
        """Nothing to refresh: a wrong key stays wrong (the error says so)."""

    def secrets(self) -> list[str]:
        """The key."""
        return [self._key.reveal()]

    def __repr__(self) -> str:
        return "KeyAuth(***)"


class TokenAuth:
    """A Microsoft Entra bearer token from `credential`, cached until near its expiry."""

    kind = "token"

    def __init__(
        self,
        credential: TokenCredential,
        *,
        scope: str = COGNITIVE_SERVICES_SCOPE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock  # AccessToken.expires_on is POSIX seconds
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def headers(self, operation: str) -> dict[str, str]:
        """``Authorization: Bearer`` with a token valid for at least five more minutes."""
        return {"Authorization": f"Bearer {self._current(operation)}"}

    def _current(self, operation: str) -> str:
        with self._lock:
            token = self._token
            if token is None or token.expires_on - TOKEN_REFRESH_MARGIN_S <= self._clock():
                try:
                    token = self._credential.get_token(self._scope)
                except Exception as exc:  # noqa: BLE001 - credential chains raise many types
                    # No `from exc` and no str(exc): credential errors can quote tokens.
                    raise SpeechAuthError(
                        "could not get a Microsoft Entra token for Speech "
                        f"({type(exc).__name__}); check the managed identity or sign-in "
                        "and its 'Cognitive Services User' role, or set SPEECH_KEY",
                        operation=operation,
                    ) from None
                self._token = token
            return token.token

    def unauthorized(self) -> None:
        """Drop the cached token: it may have been revoked; the next request gets a new one."""
        with self._lock:
            self._token = None

    def secrets(self) -> list[str]:
        """The cached token, if any."""
        with self._lock:
            return [self._token.token] if self._token is not None else []

    def __repr__(self) -> str:
        return f"TokenAuth({type(self._credential).__name__}, {self._scope!r})"


def auth_for(key: Secret | str | None, credential: TokenCredential | None) -> SpeechAuth:
    """`KeyAuth` when a key is given (it wins over a credential), else `TokenAuth`.

    Raises ValueError when there is neither.
    """
    secret = key if isinstance(key, Secret) else Secret(key or "")
    if secret:
        return KeyAuth(secret)
    if credential is None:
        raise ValueError(
            "SpeechClient needs a key or a token credential: set SPEECH_KEY, or leave it "
            "unset to sign in with Microsoft Entra ID (DefaultAzureCredential)"
        )
    return TokenAuth(credential)


def default_credential(
    env: Mapping[str, str] | None = None, storage_connection: str = HOST_CONNECTION
) -> TokenCredential:
    """The app's Microsoft Entra credential for Speech (`env` defaults to the process's).

    See `shared.storage_connection.identity_for_speech` for which identity it uses.
    """
    identity = identity_for_speech(os.environ if env is None else env, storage_connection)
    logger.info(
        "Speech: Microsoft Entra ID with %s%s",
        identity.describe(),
        f" (from {identity.source})" if identity.source else "",
    )
    return build_credential(identity)
