"""What every Speech API call goes through: latency, auth, rate limit, api-version,
injected errors, error rendering and request counting."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from speech_emulator.config import SUPPORTED_API_VERSIONS
from speech_emulator.core import Emulator
from speech_emulator.errors import ApiError, invalid
from speech_emulator.links import Links

Handler = Callable[[Emulator, Request, Links], Awaitable[Response]]


def check_auth(emu: Emulator, request: Request) -> None:
    """401 unless the key matches (or a bearer token is sent and accepted)."""
    key = request.headers.get("ocp-apim-subscription-key")
    if key is not None and hmac.compare_digest(key.encode(), emu.settings.key.encode()):
        return
    auth = request.headers.get("authorization", "")
    if emu.settings.accept_bearer and auth.lower().startswith("bearer ") and auth[7:].strip():
        return
    if key is None and not auth:
        message = (
            "Access denied due to missing subscription key. Make sure to include the "
            "Ocp-Apim-Subscription-Key header (or an Authorization: Bearer token)."
        )
    else:
        message = (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource."
        )
    raise ApiError(401, "Unauthorized", message, inner_code="InvalidSubscription")


def check_api_version(request: Request) -> str:
    """The request's api-version; 400 when missing or unsupported."""
    version = request.query_params.get("api-version")
    if version not in SUPPORTED_API_VERSIONS:
        given = "missing" if version is None else f"'{version}' is not supported"
        raise invalid(
            f"The api-version query parameter is {given}. Supported versions: "
            f"{', '.join(SUPPORTED_API_VERSIONS)} (e.g. ?api-version=2024-11-15).",
            "InvalidParameterValue",
            target="api-version",
        )
    return version


async def json_body(request: Request) -> Any:
    """The parsed JSON body; 400 when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise invalid("The request body is empty; send a JSON object.", "EmptyRequest")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(
            f"The request body is not valid JSON ({exc}).", "InvalidRequestBodyFormat"
        ) from exc
    try:
        # JSON can escape a lone UTF-16 surrogate ("\ud800"); such a string is not Unicode
        # text and would crash later, when it is signed (a web hook secret) or sent back.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(
            "The request body holds a string with an unpaired UTF-16 surrogate escape "
            f"({exc.object[exc.start : exc.end]!a}), which is not valid Unicode text.",
            "InvalidRequestBodyFormat",
        ) from exc
    return data


def speech_endpoint(
    emu: Emulator, method: str, template: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with the Speech API's common behaviour."""
    route = f"{method} {template}"

    async def endpoint(request: Request) -> Response:
        # Arrival, not answer, time: the client's view of when it called (before latency).
        emu.stats.call_arrived()
        behaviour = emu.behaviour.get()
        if behaviour.latency > 0:
            await asyncio.sleep(behaviour.latency)  # the injected slow answer
        try:
            check_auth(emu, request)
            emu.limiter.check(behaviour.rate_limit)
            version = check_api_version(request)
            fault = emu.dice.server_error(behaviour)
            if fault is not None:
                raise fault
            base = emu.public_url or str(request.base_url).rstrip("/")
            response = await handler(emu, request, emu.links(version, base))
        except ApiError as exc:
            response = exc.response()
        emu.stats.request(route, response.status_code)
        return response

    return endpoint
