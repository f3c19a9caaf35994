"""``/speechtotext/transcriptions``: submit, get, list, update, delete, files."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from speech_emulator.core import Emulator
from speech_emulator.endpoint import json_body
from speech_emulator.entities import file_entity, transcription_entity
from speech_emulator.errors import invalid, not_found
from speech_emulator.jobs import Job, JobFile
from speech_emulator.links import Links
from speech_emulator.listing import paginate, parse_filter, parse_page
from speech_emulator.tokens import expiry
from speech_emulator.validation import model_error, parse_create

TEXT_PROPS = ("displayName", "description", "status", "locale")
TIME_PROPS = ("createdDateTime", "lastActionDateTime")
MAX_SAS_MINUTES = 7 * 24 * 60


def _job(emu: Emulator, request: Request) -> Job:
    job = emu.store.get_job(request.path_params["id"])
    if job is None:
        raise not_found("transcription")
    return job


def _headers(emu: Emulator, job: Job) -> dict[str, str]:
    if job.status.terminal:
        return {}
    return {"Retry-After": str(emu.behaviour.get().poll_retry_after)}


async def submit(emu: Emulator, request: Request, links: Links) -> Response:
    """POST /transcriptions:submit → 201 with the entity and a Location header."""
    body = await json_body(request)

    def resolve(model_self: str, locale: str) -> str | None:
        found = emu.catalog.resolve(model_self)
        if found is False:
            raise model_error(model_self)
        if locale.lower() != "en-us":
            raise invalid(
                f"The model's locale en-US does not match the transcription's locale {locale}.",
                "ModelMismatch",
            )
        return found if isinstance(found, str) else None

    spec = parse_create(body, resolve)
    job = emu.store.add_job(spec, emu.dice.fate(emu.behaviour.get()))
    emu.stats.event("created")
    emu.stats.job(job.id, spec.display_name, created=job.created, status=job.status.value)
    emu.runner.submit(job)
    emu.job_event("transcriptionCreation", job)
    entity = transcription_entity(job, links)
    return JSONResponse(entity, status_code=201, headers={"Location": entity["self"]})


async def locales(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /transcriptions/locales: what the emulator's engines can transcribe."""
    return JSONResponse({"Submit": ["en-US"], "Transcribe": []})


async def get(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /transcriptions/{id}."""
    job = _job(emu, request)
    return JSONResponse(transcription_entity(job, links), headers=_headers(emu, job))


async def list_(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /transcriptions?skip&top&filter."""
    page = parse_page(request.query_params)
    filter_text = request.query_params.get("filter")
    matches = parse_filter(filter_text, TEXT_PROPS, TIME_PROPS)
    jobs = emu.store.jobs()

    def link(query: dict[str, str]) -> str:
        return links.api("/transcriptions", **query)

    if filter_text:
        selected = [e for e in (transcription_entity(j, links) for j in jobs) if matches(e)]
        values, next_link = paginate(selected, page, link, filter_text)
    else:  # thousands of live jobs: render only the page
        chunk, next_link = paginate(jobs, page, link, filter_text)
        values = [transcription_entity(j, links) for j in chunk]
    return JSONResponse({"values": list(values), "@nextLink": next_link})


async def update(emu: Emulator, request: Request, links: Links) -> Response:
    """PATCH /transcriptions/{id}: displayName, description, customProperties."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    job = _job(emu, request)
    allowed = {"displayName", "description", "customProperties"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"Only {sorted(allowed)} can be updated; got {unknown}.")
    changes: dict[str, Any] = {}
    if "displayName" in body:
        if not isinstance(body["displayName"], str) or not body["displayName"].strip():
            raise invalid("'displayName' must be a non-empty string.")
        changes["display_name"] = body["displayName"]
    if "description" in body:
        changes["description"] = body["description"]
    if "customProperties" in body:
        props = body["customProperties"]
        if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
            raise invalid("'customProperties' must map strings to strings.")
        changes["custom_properties"] = dict(props)

    def apply(j: Job) -> Job:
        j.spec = dataclasses.replace(j.spec, **changes)
        return j

    updated = emu.store.update_job(job.id, apply)
    if updated is None:
        raise not_found("transcription")
    return JSONResponse(transcription_entity(updated, links), headers=_headers(emu, updated))


async def delete(emu: Emulator, request: Request, links: Links) -> Response:
    """DELETE /transcriptions/{id} → 204, also when it does not exist."""
    job = emu.store.delete_job(request.path_params["id"])
    if job is not None:
        emu.outputs.discard(job.files)  # BYOS results go with the job
        emu.stats.event("deleted")
        emu.job_event("transcriptionDeletion", job)
    return Response(status_code=204)


def _sas_minutes(emu: Emulator, request: Request) -> int:
    raw = request.query_params.get("sasLifetimeMinutes")
    if raw is None:
        return emu.behaviour.get().sas_lifetime_minutes
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= MAX_SAS_MINUTES:
        raise invalid(
            f"'sasLifetimeMinutes' must be an integer from 1 to {MAX_SAS_MINUTES}; got {raw!r}.",
            "InvalidSasValidityDuration",
        )
    return minutes


async def list_files(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /transcriptions/{id}/files (empty until the job has finished)."""
    job = _job(emu, request)
    page = parse_page(request.query_params)
    minutes = _sas_minutes(emu, request)
    filter_text = request.query_params.get("filter")
    matches = parse_filter(filter_text, ("name", "kind"), ("createdDateTime",))
    expires = expiry(emu.clock.now(), minutes)

    def entity(file: JobFile) -> dict[str, Any]:
        return file_entity(job, file, links, emu.signer, expires)

    def next_link(query: dict[str, str]) -> str:
        if request.query_params.get("sasLifetimeMinutes"):
            query = {**query, "sasLifetimeMinutes": str(minutes)}
        return links.api(f"/transcriptions/{job.id}/files", **query)

    if filter_text:
        selected = [e for e in map(entity, job.files) if matches(e)]
        values, link = paginate(selected, page, next_link, filter_text)
    else:  # a 1,000-file job: sign only the page's URLs
        chunk, link = paginate(job.files, page, next_link, filter_text)
        values = [entity(f) for f in chunk]
    return JSONResponse({"values": list(values), "@nextLink": link}, headers=_headers(emu, job))


async def get_file(emu: Emulator, request: Request, links: Links) -> Response:
    """GET /transcriptions/{id}/files/{fileId}."""
    job = _job(emu, request)
    minutes = _sas_minutes(emu, request)
    file_id = request.path_params["file_id"].lower()
    for file in job.files:
        if file.id == file_id:
            expires = expiry(emu.clock.now(), minutes)
            return JSONResponse(file_entity(job, file, links, emu.signer, expires))
    raise not_found("file")
