"""The Speech web hook operations (``/speechtotext/webhooks``), on the client's transport.

`SpeechWebhooks` is reached as `SpeechClient.webhooks`: the same credentials, rate limiter,
error mapping and log redaction as every other Speech call. A hook entity is returned as
the service's JSON object (a dict); `hook_id_of` reads its id. What a callback means once
it arrives is `shared.webhook`'s business; the command line to register a hook is
`shared.webhook_admin`.

Reads (get, list) are retried like every Speech call. Actions (create, delete, ping, test)
are tried once: after a lost answer a retry could register a second hook, report a hook it
has just deleted as missing, or fire an event twice.

Bad input (an id that would change the URL path, a relative callback URL) raises
ValueError naming what is wrong before any request is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from shared.errors import redact_url
from shared.speech_errors import decode_json
from shared.speech_transport import SpeechRequest, SpeechTransport

if TYPE_CHECKING:
    from shared.secret import Secret

__all__ = ["DEFAULT_DISPLAY_NAME", "SpeechWebhooks", "check_web_url", "hook_id_of"]

DEFAULT_DISPLAY_NAME: Final = "speech-batch-functions completion push"
_WEBHOOKS: Final = "/speechtotext/webhooks"


class SpeechWebhooks:
    """Create, read, list, delete, ping and test the web hooks of one Speech resource."""

    def __init__(self, transport: SpeechTransport) -> None:
        self._transport = transport
        self._base = transport.url(_WEBHOOKS)

    def create(
        self,
        *,
        web_url: str,
        events: Mapping[str, bool],
        secret: Secret | None,
        display_name: str = DEFAULT_DISPLAY_NAME,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Register a hook (the service then challenges `web_url`); returns its entity.

        With `secret`, the service signs every callback with it (HMAC-SHA256 of the body).
        """
        body: dict[str, Any] = {
            "displayName": display_name,
            "webUrl": check_web_url(web_url),
            "events": dict(events),
        }
        if description:
            body["description"] = description
        if secret:
            body["properties"] = {"secret": secret.reveal()}
        request = SpeechRequest("webhook create", "POST", self._base, json=body)
        return decode_json("webhook create", self._transport.send(request), _created_entity)

    def get(self, hook_id: str) -> dict[str, Any]:
        """One hook's entity (`SpeechNotFoundError` when there is no such hook)."""
        request = SpeechRequest("webhook get", "GET", self._hook_url(hook_id))
        return self._transport.call(request, lambda r: decode_json("webhook get", r, _entity))

    def list(self) -> Iterator[dict[str, Any]]:
        """Every hook of the Speech resource (all pages)."""
        request = SpeechRequest("webhook list", "GET", self._base, params={"top": 100})
        yield from self._transport.paged(request, _entity)

    def delete(self, hook_id: str) -> None:
        """Delete a hook (a missing one raises `SpeechNotFoundError`)."""
        self._transport.send(SpeechRequest("webhook delete", "DELETE", self._hook_url(hook_id)))

    def ping(self, hook_id: str) -> None:
        """Ask the service to send a ``ping`` event to the hook's URL."""
        self._transport.send(
            SpeechRequest("webhook ping", "POST", self._hook_url(hook_id, ":ping"))
        )

    def test(self, hook_id: str) -> bool:
        """Ask the service to re-send the last event of each registered type.

        False when the service has no such event yet (HTTP 204): nothing is sent.
        """
        request = SpeechRequest("webhook test", "POST", self._hook_url(hook_id, ":test"))
        return self._transport.send(request).status_code != 204

    def _hook_url(self, hook_id: str, action: str = "") -> str:
        if not hook_id or any(ch in hook_id for ch in "/?#"):
            raise ValueError(f"not a web hook id: {hook_id!r} (see `list` for the ids)")
        return f"{self._base}/{quote(hook_id, safe='')}{action}"


def check_web_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL (where the service can call back); else
    ValueError saying what is expected."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            "the web hook URL must be an absolute http(s) URL, e.g. "
            f"https://<app>.azurewebsites.net/api/speech-webhook; got {redact_url(url)!r}"
        )
    return url


def hook_id_of(entity: Mapping[str, Any]) -> str:
    """The id (last path segment of ``self``) of a hook entity."""
    return urlsplit(str(entity.get("self", ""))).path.rstrip("/").rsplit("/", 1)[-1]


def _entity(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a web hook object, got JSON {type(data).__name__}")
    return dict(data)


def _created_entity(data: Any) -> dict[str, Any]:
    entity = _entity(data)
    if not isinstance(entity.get("self"), str):
        raise ValueError("the service did not return the new web hook (no 'self' URL)")
    return entity
