"""A stand-in for the Azure CLI (`az`) that the post-deploy hook test puts first on PATH.

It implements just the commands infra/hooks/postdeploy.sh runs, against a JSON state file
(``FAKE_AZ_STATE``): ``functionapp keys list``, ``eventgrid system-topic event-subscription
create`` and ``rest`` on the Speech ``/webhooks`` endpoints. ``--query`` is evaluated with
jmespath, the library the real CLI uses, and ``-o tsv`` is printed the way the CLI prints it,
so the hook's queries are exercised for real. Every call is recorded (argv, and the body of
``--body @file``) for the test to inspect.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jmespath


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _tsv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        rows = value if value and all(isinstance(v, list) for v in value) else [value]
        return "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _print(value: Any, args: list[str]) -> None:
    query = _option(args, "--query")
    if query:
        value = jmespath.search(query, value)
    output = _option(args, "-o") or "json"
    if output == "none":
        return
    print(_tsv(value) if output == "tsv" else json.dumps(value))


def _rest(state: dict[str, Any], args: list[str], body: Any) -> int:
    method = (_option(args, "--method") or "get").lower()
    url = _option(args, "--url") or ""
    if state.get("rest_failures", 0) > 0:
        state["rest_failures"] -= 1
        print("ERROR: (AuthenticationFailed) not yet authorised", file=sys.stderr)
        return 1
    path = urlsplit(url).path.rstrip("/")
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}/speechtotext/webhooks"
    hooks: list[dict[str, Any]] = state.setdefault("hooks", [])
    if path.endswith("/webhooks"):
        if method == "get":
            _print({"values": hooks, "@nextLink": None}, args)
            return 0
        if method == "post":
            hook_id = str(uuid.uuid4())
            hook = {
                "self": f"{base}/{hook_id}?api-version=2024-11-15",
                "displayName": body["displayName"],
                "webUrl": body["webUrl"],
                "events": body["events"],
                "status": state.get("challenge_status", "Succeeded"),
                "secret": body.get("properties", {}).get("secret"),
            }
            hooks.append(hook)
            _print(hook, args)
            return 0
    hook_id = path.rsplit("/", 1)[-1]
    matching = [h for h in hooks if h["self"].split("?")[0].endswith(f"/{hook_id}")]
    if not matching:
        print(f"ERROR: (NotFound) no web hook {hook_id}", file=sys.stderr)
        return 1
    hook = matching[0]
    if method == "get":
        _print(hook, args)
    elif method == "patch":
        hook.update({k: v for k, v in body.items() if k in ("displayName", "webUrl", "events")})
        if "secret" in body.get("properties", {}):
            hook["secret"] = body["properties"]["secret"]
        _print(hook, args)
    elif method == "delete":
        hooks.remove(hook)
    return 0


def main(args: list[str]) -> int:
    state_path = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_path.read_text(encoding="utf-8"))
    body_arg = _option(args, "--body")
    body = None
    if body_arg and body_arg.startswith("@"):
        body = json.loads(Path(body_arg[1:]).read_text(encoding="utf-8"))
    state.setdefault("calls", []).append({"argv": args, "body": body})
    code = 0
    if args[:3] == ["functionapp", "keys", "list"]:
        if state.get("key_missing_times", 0) > 0:
            state["key_missing_times"] -= 1
            _print({"systemKeys": {}}, args)
        else:
            _print({"systemKeys": {"blobs_extension": state["blobs_extension_key"]}}, args)
    elif args[:4] == ["eventgrid", "system-topic", "event-subscription", "create"]:
        state.setdefault("event_subscriptions", {})[_option(args, "--name") or ""] = args
    elif args[:1] == ["rest"]:
        code = _rest(state, args, body)
    else:
        print(f"fake az: unexpected command {args}", file=sys.stderr)
        code = 2
    state_path.write_text(json.dumps(state), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
