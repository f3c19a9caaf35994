"""HTTP triggers served locally with Starlette + uvicorn under `/<routePrefix>/<route>`.

Requests become `func.HttpRequest` (method, url, headers, params, route_params, body) and the
returned `func.HttpResponse` goes back as is. authLevel is not enforced locally (as with
`func start`); it is logged at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import azure.functions as func
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devhost.invoker import Invoker
from devhost.services import wait_for

log = logging.getLogger("devhost")

_SEGMENT = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}")


def starlette_paths(route: str) -> list[str]:
    """Starlette path(s) for an Azure Functions route template (constraints mostly dropped).

    `{*rest}` matches the remainder of the path, `{id:int}` only integers, and an optional
    last parameter `{x?}` also matches the route without it.
    """
    optional = False

    def convert(match: re.Match[str]) -> str:
        nonlocal optional
        star, name, constraint, question = match.groups()
        optional = optional or bool(question)
        if star:
            return f"{{{name}:path}}"
        if constraint == "int":
            return f"{{{name}:int}}"
        return f"{{{name}}}"

    path = "/" + _SEGMENT.sub(convert, route.strip("/"))
    paths = [path]
    if optional and "/" in path.rstrip("/"):
        paths.append(path.rsplit("/", 1)[0] or "/")
    return paths


def to_response(result: Any) -> Response:
    """A Starlette response for what an HTTP function returned."""
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        headers.pop("content-type", None)
        headers.pop("Content-Type", None)
        media = result.mimetype
        if result.charset and media and media.startswith("text/"):
            media = f"{media}; charset={result.charset}"
        return Response(
            content=result.get_body(),
            status_code=result.status_code,
            headers=headers,
            media_type=media,
        )
    if result is None:
        return Response(status_code=204)
    if isinstance(result, str | bytes):
        return Response(content=result, status_code=200, media_type="text/plain")
    raise TypeError(f"an HTTP function returned {type(result).__name__}; return func.HttpResponse")


def _endpoint(invoker: Invoker) -> Any:
    async def handle(request: Request) -> Response:
        body = await request.body()
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query_params),
            route_params={k: str(v) for k, v in request.path_params.items()},
            body=body,
        )
        outcome = await run_in_threadpool(
            invoker,
            "This function was programmatically called via the host APIs.",
            http_request,
            {k: str(v) for k, v in request.path_params.items()},
        )
        if not outcome.succeeded:
            return Response(status_code=500)
        try:
            return to_response(outcome.result)
        except TypeError as exc:
            log.error("Function %s: %s", invoker.spec.name, exc)
            return Response(status_code=500)

    return handle


def build_app(invokers: Sequence[Invoker], prefix: str) -> Starlette:
    """The Starlette application serving every HTTP-triggered function."""
    routes: list[Route] = []
    for invoker in invokers:
        trigger = invoker.spec.trigger
        route = str(trigger.get("route") or invoker.spec.name)
        methods = [m.upper() for m in trigger.get("methods") or []] or None
        for path in starlette_paths(route):
            full = f"/{prefix}{path}" if prefix else path
            routes.append(Route(full.rstrip("/") or "/", _endpoint(invoker), methods=methods))
    return Starlette(routes=routes)


class HttpServerError(RuntimeError):
    """The HTTP server could not start (usually: the port is in use)."""


class HttpServer:
    """uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, invokers: Sequence[Invoker], *, port: int, prefix: str) -> None:
        self.invokers = list(invokers)
        config = uvicorn.Config(
            build_app(self.invokers, prefix),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="devhost-http", daemon=True)
        self.port = port

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the socket is listening (the real port in `port`)."""
        self._thread.start()
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: self._server.started or not self._thread.is_alive(),
                timeout=timeout,
                interval=0.02,
                what="the HTTP server",
            )
        if not self._server.started:
            raise HttpServerError(
                f"the HTTP server did not start on 127.0.0.1:{self.port} (port in use? pass --port)"
            )
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.should_exit = True
        self._thread.join(10)
