"""The Starlette application: Speech API routes, admin routes, error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from speech_emulator import admin, api_models, api_transcriptions, api_webhooks
from speech_emulator.config import Settings
from speech_emulator.core import Emulator
from speech_emulator.endpoint import Handler, speech_endpoint
from speech_emulator.engines.base import Engine

API = "/speechtotext"

# Order matters: ":ping", ":test", "locales" and "models/base" must match before "{id}".
SPEECH_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/transcriptions:submit", api_transcriptions.submit),
    ("GET", "/transcriptions", api_transcriptions.list_),
    ("GET", "/transcriptions/locales", api_transcriptions.locales),
    ("GET", "/transcriptions/{id}/files", api_transcriptions.list_files),
    ("GET", "/transcriptions/{id}/files/{file_id}", api_transcriptions.get_file),
    ("GET", "/transcriptions/{id}", api_transcriptions.get),
    ("PATCH", "/transcriptions/{id}", api_transcriptions.update),
    ("DELETE", "/transcriptions/{id}", api_transcriptions.delete),
    ("POST", "/webhooks/{id}:ping", api_webhooks.ping),
    ("POST", "/webhooks/{id}:test", api_webhooks.test),
    ("POST", "/webhooks", api_webhooks.create),
    ("GET", "/webhooks", api_webhooks.list_),
    ("GET", "/webhooks/{id}", api_webhooks.get),
    ("PATCH", "/webhooks/{id}", api_webhooks.update),
    ("DELETE", "/webhooks/{id}", api_webhooks.delete),
    ("GET", "/models/base", api_models.list_base),
    ("GET", "/models/base/{id}", api_models.get_base),
    ("GET", "/models", api_models.list_custom),
    ("GET", "/models/{id}", api_models.get_custom),
]

AdminHandler = Callable[[Emulator, Request], Awaitable[Response]]
ADMIN_ROUTES: list[tuple[str, str, AdminHandler]] = [
    ("GET", "/_emulator/config", admin.get_config),
    ("PATCH", "/_emulator/config", admin.patch_config),
    ("GET", "/_emulator/stats", admin.stats),
    ("POST", "/_emulator/reset", admin.reset),
    ("POST", "/_emulator/clock", admin.clock),
    ("GET", "/_content/{job_id}/{file_id}/{name}", admin.content),
]


def _bind(emu: Emulator, handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(emu, request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        body = {"code": "NotAllowed", "message": f"{request.method} is not allowed on this path."}
    elif status == 404:
        body = {
            "code": "NotFound",
            "message": f"No resource at {request.url.path}; see /speechtotext/... paths of "
            "the batch transcription API.",
        }
    else:
        body = {"code": "InternalServerError", "message": "An internal error occurred."}
    return JSONResponse(body, status_code=status)


def build_app(emu: Emulator) -> Starlette:
    """The ASGI app for an existing `Emulator` (started and stopped with the app)."""
    routes = [
        Route(API + path, speech_endpoint(emu, method, API + path, handler), methods=[method])
        for method, path, handler in SPEECH_ROUTES
    ]
    routes += [Route(path, _bind(emu, h), methods=[m]) for m, path, h in ADMIN_ROUTES]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        emu.start()
        try:
            yield
        finally:
            emu.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.emulator = emu
    return app


def create_app(config: Settings, engine: Engine | None = None) -> Starlette:
    """Build the emulator app from settings (in-process use; the CLI adds the server)."""
    return build_app(Emulator(config, engine=engine))
