"""Register and manage the Speech web hook that pushes completions to the app.

Usage (settings as the app reads them, through `shared.settings`: SPEECH_ENDPOINT plus
SPEECH_KEY, or Microsoft Entra ID through DefaultAzureCredential when SPEECH_KEY is unset;
SPEECH_API_VERSION, SPEECH_TIMEOUT_SECONDS, SPEECH_MAX_ATTEMPTS and SPEECH_RATE_LIMIT are
honoured; WEBHOOK_SECRET is the secret to register)::

    python -m shared.webhook_admin register \\
        --url https://<app>.azurewebsites.net/api/speech-webhook \\
        [--secret-from-env VAR | --no-secret] \\
        [--events TranscriptionCompletion ...] [--name NAME] [--wait SECONDS]
    python -m shared.webhook_admin list
    python -m shared.webhook_admin show ID
    python -m shared.webhook_admin delete ID
    python -m shared.webhook_admin ping ID    # the service sends a `ping` event
    python -m shared.webhook_admin test ID    # re-sends the last event of each registered type

`register` creates the hook, then waits for the service's challenge to the URL to succeed
(the app's ``speech-webhook`` function answers it) and reports the hook's status. The secret
is read from the environment (the app's WEBHOOK_SECRET setting, or the variable named by
``--secret-from-env``), never from the command line (shell history, process lists), and is
never printed; URLs are printed without their query string.

The hooks are managed through `SpeechClient.webhooks`, the client's public web hook
operations, on a client built by `SpeechClient.from_settings`: authentication, rate limit,
error mapping and log redaction are the app's own.

Settings without storage: `Settings.from_env` insists on the app's storage connection
(AzureWebJobsStorage, or the one STORAGE_CONNECTION names), which this command never
opens. Rather than read the SPEECH_* variables by hand (and drift from the app's
validation), `admin_settings` fills an absent connection with a placeholder nothing here
uses and lets `Settings.from_env` read and check everything else exactly as for the app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from shared.errors import ConfigurationError, SpeechServiceError, redact_url
from shared.secret import Secret
from shared.settings import Settings
from shared.speech_client import SpeechClient
from shared.speech_webhooks import DEFAULT_DISPLAY_NAME, SpeechWebhooks, check_web_url, hook_id_of

if TYPE_CHECKING:
    import httpx

__all__ = [
    "EVENT_NAMES",
    "AdminError",
    "admin_settings",
    "event_flags",
    "main",
    "public",
    "run",
    "wait_ready",
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
_SECRET_SETTING: Final = "WEBHOOK_SECRET"  # noqa: S105 - a setting's name
# Stands in for the storage connection Settings insists on; this command never opens it.
_UNUSED_STORAGE: Final = "UseDevelopmentStorage=true"
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


def wait_ready(
    hooks: SpeechWebhooks, hook_id: str, timeout: float, interval: float = 1.0
) -> dict[str, Any]:
    """The hook once its challenge is over (status Succeeded or Failed), or at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        entity = hooks.get(hook_id)
        if entity.get("status") not in _PENDING or time.monotonic() >= deadline:
            return entity
        time.sleep(interval)  # waiting on the service's own challenge round-trip


def admin_settings(env: Mapping[str, str], endpoint: str | None = None) -> Settings:
    """The app's settings from `env` (`endpoint` overriding SPEECH_ENDPOINT), storage aside.

    A storage connection is not needed here: when `env` has none, a placeholder stands in
    for it (see the module docstring). Raises `ConfigurationError` naming a bad setting.
    """
    values = dict(env)
    if endpoint:
        values["SPEECH_ENDPOINT"] = endpoint
    storage = values.get("STORAGE_CONNECTION", "").strip() or "AzureWebJobsStorage"
    if not values.get(storage, "").strip():
        values[storage] = _UNUSED_STORAGE
    return Settings.from_env(values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.webhook_admin",
        description="Manage the Speech web hook that pushes job completions to the app. "
        "Reads the app's settings: SPEECH_ENDPOINT and SPEECH_KEY (or Microsoft Entra ID "
        "when SPEECH_KEY is unset), SPEECH_API_VERSION, WEBHOOK_SECRET, ...",
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
        default=None,
        metavar="VAR",
        help="environment variable holding the secret (default: the WEBHOOK_SECRET setting; "
        "must equal the app's WEBHOOK_SECRET)",
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
    register.add_argument("--name", default=DEFAULT_DISPLAY_NAME, help="the hook's display name")
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


def _secret(args: argparse.Namespace, settings: Settings, env: Mapping[str, str]) -> Secret | None:
    """The secret to register: None with --no-secret, else the setting or the named variable."""
    if args.no_secret:
        return None
    source = args.secret_from_env or _SECRET_SETTING
    secret = (
        Secret(env.get(source, "").strip()) if args.secret_from_env else settings.webhook_secret
    )
    if not secret:
        raise AdminError(
            f"{source} is not set: export it with the same value as the app's "
            f"{_SECRET_SETTING} setting, or pass --no-secret to register unsigned callbacks "
            "(anyone who learns the URL could then announce completions)"
        )
    return secret


def _register(
    hooks: SpeechWebhooks, args: argparse.Namespace, settings: Settings, env: Mapping[str, str]
) -> int:
    secret = _secret(args, settings, env)
    web_url = check_web_url(args.url)
    parts = urlsplit(web_url)
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        print(
            "warning: the Speech service calls back over the internet; use an https URL",
            file=sys.stderr,
        )
    entity = hooks.create(
        web_url=web_url, events=event_flags(args.events), secret=secret, display_name=args.name
    )
    hook_id = hook_id_of(entity)
    print(f"registered web hook {hook_id} -> {redact_url(web_url)} (signed: {bool(secret)})")
    if args.wait > 0:
        entity = wait_ready(hooks, hook_id, args.wait)
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


def run(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run one command; returns the process exit code (0 ok, 1 failed, 2 usage).

    `env` defaults to the process environment; `transport` is the HTTP transport under the
    Speech client (tests pass `httpx.MockTransport`).
    """
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        settings = admin_settings(env, args.endpoint)
        with SpeechClient.from_settings(settings, transport=transport) as client:
            return _command(client.webhooks, args, settings, env)
    except ConfigurationError as exc:
        hint = " (or pass --endpoint)" if exc.setting == "SPEECH_ENDPOINT" else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return _EXIT_USAGE
    except (AdminError, ValueError) as exc:  # ValueError: an id or URL the API refuses
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except SpeechServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_FAILED


def _command(
    hooks: SpeechWebhooks, args: argparse.Namespace, settings: Settings, env: Mapping[str, str]
) -> int:
    if args.command == "register":
        return _register(hooks, args, settings, env)
    if args.command == "list":
        for hook in hooks.list():
            shown = public(hook)
            events = ",".join(k for k, v in (shown.get("events") or {}).items() if v)
            print(
                f"{hook_id_of(hook)}  {shown.get('status', '?'):<10}  "
                f"{shown.get('webUrl', '')}  [{events}]  {shown.get('displayName', '')}"
            )
    elif args.command == "show":
        _print_json(hooks.get(args.id))
    elif args.command == "delete":
        hooks.delete(args.id)
        print(f"deleted web hook {args.id}")
    elif args.command == "ping":
        hooks.ping(args.id)
        print(f"ping requested for web hook {args.id}")
    elif args.command == "test":
        sent = hooks.test(args.id)
        print(
            f"test events requested for web hook {args.id}"
            if sent
            else "no event to replay yet (the service has not sent any of its types)"
        )
    return 0


def main() -> None:
    """Console entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
