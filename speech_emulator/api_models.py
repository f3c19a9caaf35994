"""``/speechtotext/models``: custom models (``--custom-model``) and the base model."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from speech_emulator.core import Emulator
from speech_emulator.errors import not_found
from speech_emulator.links import Links
from speech_emulator.listing import paginate, parse_filter, parse_page
from speech_emulator.speech_models import BASE_MODEL_ID

TEXT_PROPS = ("displayName", "description", "status", "locale")
TIME_PROPS = ("createdDateTime", "lastActionDateTime")


async def list_custom(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /models: the custom models."""
    page = parse_page(request.query_params)
    filter_text = request.query_params.get("filter")
    matches = parse_filter(filter_text, TEXT_PROPS, TIME_PROPS)
    entities = [emu.catalog.custom_entity(m, links) for m in emu.catalog.custom.values()]
    values, link = paginate(
        [e for e in entities if matches(e)], page, lambda q: links.api("/models", **q), filter_text
    )
    return JSONResponse({"values": list(values), "@nextLink": link})


async def get_custom(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /models/{id}."""
    model = emu.catalog.custom.get(request.path_params["id"].lower())
    if model is None:
        raise not_found("model")
    return JSONResponse(emu.catalog.custom_entity(model, links))


async def list_base(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /models/base: the one en-US base model."""
    page = parse_page(request.query_params)
    filter_text = request.query_params.get("filter")
    matches = parse_filter(filter_text, TEXT_PROPS, TIME_PROPS)
    entities = [e for e in [emu.catalog.base_entity(links)] if matches(e)]
    values, link = paginate(entities, page, lambda q: links.api("/models/base", **q), filter_text)
    return JSONResponse({"values": list(values), "@nextLink": link})


async def get_base(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /models/base/{id}."""
    if request.path_params["id"].lower() != BASE_MODEL_ID:
        raise not_found("base model")
    return JSONResponse(emu.catalog.base_entity(links))
