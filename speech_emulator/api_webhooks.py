"""``/speechtotext/webhooks``: create (with the challenge), get, list, update, delete, ping,
test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from speech_emulator.core import Emulator
from speech_emulator.endpoint import json_body
from speech_emulator.entities import webhook_entity
from speech_emulator.errors import invalid, not_found
from speech_emulator.links import Links
from speech_emulator.listing import paginate, parse_filter, parse_page
from speech_emulator.store import WebHook

EVENT_NAMES = frozenset(
    f"{kind}{phase}"
    for kind in ("dataset", "model", "evaluation", "transcription", "endpoint")
    for phase in ("Creation", "Processing", "Completion", "Deletion")
) | {"ping", "challenge"}


def _web_url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(
            "'webUrl' must be an absolute http(s) URL that answers the challenge.",
            "InvalidCallbackUri",
        )
    return str(value)


def _events(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping) or not value:
        raise invalid(
            "'events' must be an object such as {\"transcriptionCompletion\": true}.",
            "InvalidWebHookEventKind",
        )
    unknown = sorted(set(value) - EVENT_NAMES)
    if unknown or not all(isinstance(v, bool) for v in value.values()):
        raise invalid(
            f"Unknown web hook event(s) {unknown} or non-boolean values; known events: "
            f"{sorted(EVENT_NAMES)}.",
            "InvalidWebHookEventKind",
        )
    if not any(value.values()):
        raise invalid("At least one event must be true.", "InvalidWebHookEventKind")
    return dict(value)


def _secret(body: Mapping[str, Any]) -> str | None:
    props = body.get("properties")
    if props is None:
        return None
    if not isinstance(props, Mapping):
        raise invalid("'properties' must be an object.")
    secret = props.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise invalid("'properties.secret' must be a string.")
    return secret or None


def _hook(emu: Emulator, request: Request) -> WebHook:
    hook = emu.store.get_hook(request.path_params["id"])
    if hook is None:
        raise not_found("web hook")
    return hook


async def create(emu: Emulator, request: Request, links: Links) -> Response:
    """POST /webhooks → 201 (status NotStarted until the challenge succeeds)."""
    body = await json_body(request)
    if not isinstance(body, Mapping):
        raise invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise invalid("The 'displayName' property is required.", target="displayName")
    hook = WebHook(
        id=str(uuid.uuid4()),
        display_name=name,
        web_url=_web_url(body.get("webUrl")),
        events=_events(body.get("events")),
        created=emu.clock.now(),
        api_version=links.api_version,
        description=body.get("description"),
        secret=_secret(body),
        custom_properties=dict(body.get("customProperties") or {}),
    )
    emu.store.add_hook(hook)
    # The answer shows the hook as created: the challenge runs in the background and may
    # finish before the response is built, so the entity is taken before it starts.
    entity = webhook_entity(hook, links)
    emu.notifier.challenge(hook.id)
    return JSONResponse(entity, status_code=201, headers={"Location": entity["self"]})


async def get(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /webhooks/{id}."""
    return JSONResponse(webhook_entity(_hook(emu, request), links))


async def list_(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /webhooks?skip&top&filter."""
    page = parse_page(request.query_params)
    filter_text = request.query_params.get("filter")
    matches = parse_filter(
        filter_text,
        ("displayName", "description", "status", "webUrl"),
        ("createdDateTime", "lastActionDateTime"),
    )
    entities = [webhook_entity(h, links) for h in emu.store.hooks()]
    values, link = paginate(
        [e for e in entities if matches(e)],
        page,
        lambda q: links.api("/webhooks", **q),
        filter_text,
    )
    return JSONResponse({"values": list(values), "@nextLink": link})


async def update(emu: Emulator, request: Request, links: Links) -> Response:
    """PATCH /webhooks/{id}; a new webUrl repeats the challenge."""
    body = await json_body(request)
    if not isinstance(body, Mapping):
        raise invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    hook = _hook(emu, request)
    new_url = _web_url(body["webUrl"]) if "webUrl" in body else None
    events = _events(body["events"]) if "events" in body else None
    secret_given = isinstance(body.get("properties"), Mapping) and "secret" in body["properties"]
    secret = _secret(body)

    def apply(h: WebHook) -> None:
        if isinstance(body.get("displayName"), str) and body["displayName"].strip():
            h.display_name = body["displayName"]
        if "description" in body:
            h.description = body["description"]
        if isinstance(body.get("customProperties"), Mapping):
            h.custom_properties = dict(body["customProperties"])
        if events is not None:
            h.events = events
        if secret_given:
            h.secret = secret
        if new_url is not None and new_url != h.web_url:
            h.web_url = new_url
            h.status, h.error = "NotStarted", None
        h.last_action = emu.clock.now()

    emu.store.update_hook(hook.id, apply)
    entity = webhook_entity(hook, links)  # as updated, before a new challenge can change it
    if hook.status == "NotStarted":
        emu.notifier.challenge(hook.id)
    return JSONResponse(entity)


async def delete(emu: Emulator, request: Request, links: Links) -> Response:
    """DELETE /webhooks/{id} → 204 (404 when it does not exist)."""
    if emu.store.delete_hook(request.path_params["id"]) is None:
        raise not_found("web hook")
    return Response(status_code=204)


async def ping(emu: Emulator, request: Request, links: Links) -> Response:
    """POST /webhooks/{id}:ping → 202; sends a ``ping`` event with the hook entity."""
    hook = _hook(emu, request)
    emu.notifier.ping(hook, json.dumps(webhook_entity(hook, links)).encode())
    return Response(status_code=202, headers={"Retry-After": "1"})


async def test(emu: Emulator, request: Request, links: Links) -> Response:
    """POST /webhooks/{id}:test → 202 with the last entity per event, or 204 when none."""
    hook = _hook(emu, request)
    if emu.notifier.test(hook):
        return Response(status_code=202, headers={"Retry-After": "1"})
    return Response(status_code=204)
