"""Register and manage the Speech web hook that pushes completions to the app.

Usage (credentials as the app uses them: SPEECH_ENDPOINT plus SPEECH_KEY, or Microsoft
Entra ID through DefaultAzureCredential when SPEECH_KEY is unset; SPEECH_API_VERSION is
honoured)::

    python -m shared.webhook_admin register \\
        --url https://<app>.azurewebsites.net/api/speech-webhook \\
        [--secret-from-env WEBHOOK_SECRET | --no-secret] \\
        [--events TranscriptionCompletion ...] [--name NAME] [--wait SECONDS]
    python -m shared.webhook_admin list
    python -m shared.webhook_admin show ID
    python -m shared.webhook_admin delete ID
    python -m shared.webhook_admin ping ID    # the service sends a `ping` event
    python -m shared.webhook_admin test ID    # re-sends the last event of each registered type

`register` creates the hook, then waits for the service's challenge to the URL to succeed
(the app's ``speech-webhook`` function answers it) and reports the hook's status. The secret
is read from an environment variable, never from the command line (shell history, process
lists) and is never printed; URLs are printed without their query string.

The web hook endpoints are called through `SpeechClient`'s own request plumbing, so
authentication, error mapping and log redaction are the same as the app's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, urlsplit

from shared.errors import SpeechServiceError, redact_url
from shared.speech_client import SpeechClient
from shared.speech_models import API_VERSIONS

__all__ = [
    "EVENT_NAMES",
    "AdminError",
    "WebhookAdmin",
    "event_flags",
    "hook_id_of",
    "main",
    "public",
    "run",
]

# WebHookEvents of the 2024-11-15 API: the keys of a hook's "events" object.
EVENT_NAMES: Final = (
    *(
        f"{kind}{phase}"
        for kind in ("dataset", "model", "evaluation", "transcription", "endpoint")
        for phase in ("Creation", "Processing", "Completion", "Deletion")
    ),
    "ping",
    "challenge",
)
DEFAULT_EVENTS: Final = ("transcriptionCompletion",)
DEFAULT_NAME: Final = "speech-batch-functions completion push"
_PENDING: Final = frozenset({"NotStarted", "Running"})
_EXIT_FAILED: Final = 1
_EXIT_USAGE: Final = 2


class AdminError(Exception):
    """A command cannot be carried out; the message says why and what to do."""


def event_flags(names: Sequence[str]) -> dict[str, bool]:
    """The ``events`` object for `names`, matched case-insensitively to WebHookEvents.

    ``TranscriptionCompletion`` (the header spelling) and ``transcriptionCompletion`` are
    the same event. Raises `AdminError` listing the known names for an unknown one.
    """
    known = {name.lower(): name for name in EVENT_NAMES}
    flags: dict[str, bool] = {}
    for name in names:
        canonical = known.get(name.strip().lower())
        if canonical is None:
            raise AdminError(f"unknown web hook event {name!r}; known: {', '.join(EVENT_NAMES)}")
        flags[canonical] = True
    if not flags:
        raise AdminError("at least one event is needed, e.g. --events TranscriptionCompletion")
    return flags


def _hook_id(hook_id: str) -> str:
    if not hook_id or any(ch in hook_id for ch in "/?#"):
        raise AdminError(f"not a web hook id: {hook_id!r} (see `list` for the ids)")
    return quote(hook_id, safe="")


def _check_web_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminError(
            f"--url must be an absolute http(s) URL, e.g. "
            f"https://<app>.azurewebsites.net/api/speech-webhook; got {redact_url(url)!r}"
        )
    return url


def public(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A hook entity safe to print: no secret, URLs without their query string."""
    shown = dict(entity)
    if isinstance(shown.get("properties"), Mapping):
        shown["properties"] = {k: v for k, v in shown["properties"].items() if k != "secret"}
    for key in ("webUrl", "self"):
        if isinstance(shown.get(key), str):
            shown[key] = redact_url(shown[key])
    shown.pop("links", None)
    return shown


class WebhookAdmin:
    """The ``/speechtotext/webhooks`` endpoints over a `SpeechClient`'s connection."""

    def __init__(self, client: SpeechClient, endpoint: str) -> None:
        self._client = client
        self._base = endpoint.rstrip("/") + "/speechtotext/webhooks"

    # `SpeechClient` has no public generic request method; its `_send` (one request, typed
    # errors, auth, redaction) and `_paged` (@nextLink) are exactly what is needed here.
    def _request(self, operation: str, method: str, url: str, body: Any = None) -> Any:
        response = self._client._send(operation, method, url, json=body)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AdminError(
                f"{operation}: the service answered HTTP {response.status_code} with a body "
                "that is not JSON"
            ) from None

    def create(
        self,
        *,
        web_url: str,
        events: Mapping[str, bool],
        secret: str | None,
        display_name: str = DEFAULT_NAME,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Register a hook (the service then challenges `web_url`); returns its entity."""
        body: dict[str, Any] = {
            "displayName": display_name,
            "webUrl": _check_web_url(web_url),
            "events": dict(events),
        }
        if description:
            body["description"] = description
        if secret:
            body["properties"] = {"secret": secret}
        entity = self._request("webhook create", "POST", self._base, body)
        if not isinstance(entity, Mapping) or not isinstance(entity.get("self"), str):
            raise AdminError("webhook create: the service did not return the new web hook")
        return dict(entity)

    def get(self, hook_id: str) -> dict[str, Any]:
        """One hook's entity."""
        entity = self._request("webhook get", "GET", f"{self._base}/{_hook_id(hook_id)}")
        if not isinstance(entity, Mapping):
            raise AdminError("webhook get: the service returned no web hook")
        return dict(entity)

    def list(self) -> Iterator[dict[str, Any]]:
        """Every hook of the Speech resource (all pages)."""
        yield from self._client._paged("webhook list", self._base, {"top": 100}, dict)

    def delete(self, hook_id: str) -> None:
        """Delete a hook (a missing one raises `SpeechNotFoundError`)."""
        self._request("webhook delete", "DELETE", f"{self._base}/{_hook_id(hook_id)}")

    def ping(self, hook_id: str) -> None:
        """Ask the service to send a ``ping`` event to the hook's URL."""
        self._request("webhook ping", "POST", f"{self._base}/{_hook_id(hook_id)}:ping")

    def test(self, hook_id: str) -> bool:
        """Ask the service to re-send the last event of each registered type.

        False when the service has no such event yet (HTTP 204): nothing is sent.
        """
        response = self._client._send(
            "webhook test", "POST", f"{self._base}/{_hook_id(hook_id)}:test"
        )
        return response.status_code != 204

    def wait_ready(self, hook_id: str, timeout: float, interval: float = 1.0) -> dict[str, Any]:
        """The hook once its challenge is over (status Succeeded or Failed), or at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            entity = self.get(hook_id)
            if entity.get("status") not in _PENDING or time.monotonic() >= deadline:
                return entity
            time.sleep(interval)  # waiting on the service's own challenge round-trip


def hook_id_of(entity: Mapping[str, Any]) -> str:
    """The id (last path segment of ``self``) of a hook entity."""
    return urlsplit(str(entity.get("self", ""))).path.rstrip("/").rsplit("/", 1)[-1]


def _client_from_env(env: Mapping[str, str], endpoint: str | None) -> tuple[SpeechClient, str]:
    endpoint = (endpoint or env.get("SPEECH_ENDPOINT", "")).strip().rstrip("/")
    if not endpoint:
        raise AdminError(
            "SPEECH_ENDPOINT is not set: export it (the Speech resource endpoint, e.g. "
            "https://<name>.cognitiveservices.azure.com) or pass --endpoint"
        )
    api_version = env.get("SPEECH_API_VERSION", "").strip() or API_VERSIONS[0]
    if api_version not in API_VERSIONS:
        raise AdminError(
            f"SPEECH_API_VERSION {api_version!r} is not supported; use one of "
            f"{', '.join(API_VERSIONS)}"
        )
    key = env.get("SPEECH_KEY", "").strip()
    credential = None
    if not key:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415 - heavy, Entra only

        credential = DefaultAzureCredential()
    try:
        client = SpeechClient(
            endpoint, api_version, key=key or None, credential=credential, max_attempts=3
        )
    except ValueError as exc:
        raise AdminError(f"SPEECH_ENDPOINT: {exc}") from None
    return client, endpoint


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.webhook_admin",
        description="Manage the Speech web hook that pushes job completions to the app. "
        "Uses SPEECH_ENDPOINT and SPEECH_KEY (or Microsoft Entra ID when SPEECH_KEY is unset).",
    )
    parser.add_argument("--endpoint", help="Speech endpoint (default: $SPEECH_ENDPOINT)")
    commands = parser.add_subparsers(dest="command", required=True)
    register = commands.add_parser("register", help="create a web hook and wait for its challenge")
    register.add_argument(
        "--url",
        required=True,
        help="the app's endpoint, https://<app>.azurewebsites.net/api/speech-webhook",
    )
    secret = register.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-from-env",
        default="WEBHOOK_SECRET",
        metavar="VAR",
        help="environment variable holding the secret (default WEBHOOK_SECRET; must equal "
        "the app's WEBHOOK_SECRET setting)",
    )
    secret.add_argument(
        "--no-secret",
        action="store_true",
        help="register without a secret: callbacks are unsigned (not recommended)",
    )
    register.add_argument(
        "--events",
        nargs="+",
        default=list(DEFAULT_EVENTS),
        metavar="EVENT",
        help="events to receive (default TranscriptionCompletion)",
    )
    register.add_argument("--name", default=DEFAULT_NAME, help="the hook's display name")
    register.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the challenge to succeed (0: do not wait)",
    )
    commands.add_parser("list", help="list the web hooks of the Speech resource")
    for name, text in (
        ("show", "show one web hook"),
        ("delete", "delete a web hook"),
        ("ping", "send a ping event to a web hook's URL"),
        ("test", "re-send the last event of each registered type"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("id", help="the web hook id (see `list`)")
    return parser


def _print_json(entity: Mapping[str, Any]) -> None:
    print(json.dumps(public(entity), indent=2, sort_keys=True))


def _register(admin: WebhookAdmin, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    secret: str | None = None
    if not args.no_secret:
        secret = env.get(args.secret_from_env, "").strip()
        if not secret:
            raise AdminError(
                f"{args.secret_from_env} is not set: export it with the same value as the "
                "app's WEBHOOK_SECRET setting, or pass --no-secret to register unsigned "
                "callbacks (anyone who learns the URL could then announce completions)"
            )
    web_url = _check_web_url(args.url)
    parts = urlsplit(web_url)
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        print(
            "warning: the Speech service calls back over the internet; use an https URL",
            file=sys.stderr,
        )
    entity = admin.create(
        web_url=web_url, events=event_flags(args.events), secret=secret, display_name=args.name
    )
    hook_id = hook_id_of(entity)
    print(f"registered web hook {hook_id} -> {redact_url(web_url)} (signed: {bool(secret)})")
    if args.wait > 0:
        entity = admin.wait_ready(hook_id, args.wait)
    _print_json(entity)
    status = entity.get("status")
    if status == "Failed":
        error = (entity.get("properties") or {}).get("error") or {}
        print(
            f"error: the challenge failed: {error.get('message', 'no detail')} — is the app "
            "deployed and its speech-webhook function reachable at that URL?",
            file=sys.stderr,
        )
        return _EXIT_FAILED
    if status in _PENDING and args.wait > 0:
        print(
            f"warning: the challenge has not completed after {args.wait:g} s; check later "
            f"with `show {hook_id}`",
            file=sys.stderr,
        )
    return 0


def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; returns the process exit code (0 ok, 1 failed, 2 usage)."""
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        client, endpoint = _client_from_env(env, args.endpoint)
        with client:
            admin = WebhookAdmin(client, endpoint)
            if args.command == "register":
                return _register(admin, args, env)
            if args.command == "list":
                for hook in admin.list():
                    shown = public(hook)
                    events = ",".join(k for k, v in (shown.get("events") or {}).items() if v)
                    print(
                        f"{hook_id_of(hook)}  {shown.get('status', '?'):<10}  "
                        f"{shown.get('webUrl', '')}  [{events}]  {shown.get('displayName', '')}"
                    )
            elif args.command == "show":
                _print_json(admin.get(args.id))
            elif args.command == "delete":
                admin.delete(args.id)
                print(f"deleted web hook {args.id}")
            elif args.command == "ping":
                admin.ping(args.id)
                print(f"ping requested for web hook {args.id}")
            elif args.command == "test":
                sent = admin.test(args.id)
                print(
                    f"test events requested for web hook {args.id}"
                    if sent
                    else "no event to replay yet (the service has not sent any of its types)"
                )
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except SpeechServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    return 0


def main() -> None:
    """Console entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
