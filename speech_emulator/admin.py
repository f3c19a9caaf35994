"""``/_emulator/*`` (no auth, not counted as Speech calls) and the file downloads.

- ``GET/PATCH /_emulator/config``: timing and faults (see `Behaviour`).
- ``GET /_emulator/stats[?window_s=S]``: request counts, downloads, callbacks, job
  timelines, file slots, and the most Speech calls seen in any S-second window.
- ``POST /_emulator/reset``: forget all state.
- ``POST /_emulator/clock`` ``{"advance_seconds": N}``: move the emulator clock ahead.
- ``GET /_content/{job}/{file}/{name}?se=&sig=``: a file's contentUrl (SAS-like token).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from speech_emulator.core import Emulator
from speech_emulator.timefmt import iso_timestamp_ms
from speech_emulator.tokens import TokenError


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"code": "InvalidRequest", "message": message}, status_code=400)


async def _json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def get_config(emu: Emulator, request: Request) -> Response:
    """The current behaviour."""
    return JSONResponse(emu.behaviour.get().to_json())


async def patch_config(emu: Emulator, request: Request) -> Response:
    """Change behaviour fields; 400 (and no change) on an unknown key or bad value."""
    try:
        changes = await _json(request)
        if not isinstance(changes, dict):
            return _bad("Send a JSON object of settings to change.")
        behaviour = emu.behaviour.update(changes)
    except (ValueError, json.JSONDecodeError) as exc:
        return _bad(str(exc))
    if "concurrent_files" in changes:
        emu.runner.wake()  # more slots: waiting files start now
    if "rate_limit" in changes:
        # A new limit starts a new window: calls counted under an earlier limit (possibly
        # minutes ago, by another client) must not eat into the new one.
        emu.limiter.reset()
    return JSONResponse(behaviour.to_json())


DEFAULT_WINDOW_S = 10.0  # the real S0 tier's rate-limit window


async def stats(emu: Emulator, request: Request) -> Response:
    """Counters, job timelines, slots and the busiest window of Speech calls.

    ``?window_s=S`` picks that window's length; by default the rate limit's window, or 10 s.
    """
    limit = emu.behaviour.get().rate_limit
    window_s = limit.per_seconds if limit else DEFAULT_WINDOW_S
    raw = request.query_params.get("window_s")
    if raw is not None:
        try:
            window_s = float(raw)
        except ValueError:
            window_s = 0.0
        if not 0 < window_s <= 86400:
            return _bad(
                f"window_s must be a number of seconds above 0 and at most 86400; got {raw!r}."
            )
    snapshot = emu.stats.snapshot(emu.store.count_jobs(), emu.runner.capacity(), window_s)
    return JSONResponse(snapshot)


async def reset(emu: Emulator, request: Request) -> Response:
    """Forget everything."""
    emu.reset()
    return Response(status_code=204)


async def clock(emu: Emulator, request: Request) -> Response:
    """Advance the emulator clock (for time-to-live and delays) and report the new time."""
    try:
        body = await _json(request)
        seconds = body.get("advance_seconds", 0) if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _bad('Send {"advance_seconds": N} with N >= 0.')
    except json.JSONDecodeError as exc:
        return _bad(str(exc))
    emu.clock.advance(float(seconds))
    return JSONResponse({"now": iso_timestamp_ms(emu.clock.now())})


def _storage_error(status: int, code: str, message: str) -> Response:
    # Shaped like Azure Storage's XML errors: the contentUrl stands in for a blob SAS URL.
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(
        body, status_code=status, media_type="application/xml", headers={"x-ms-error-code": code}
    )


async def content(emu: Emulator, request: Request) -> Response:
    """Serve a result/report file to the holder of a valid token."""
    job_id = request.path_params["job_id"].lower()
    file_id = request.path_params["file_id"].lower()
    try:
        emu.signer.check(
            job_id,
            file_id,
            request.query_params.get("se"),
            request.query_params.get("sig"),
            emu.clock.now(),
        )
    except TokenError as exc:
        response = _storage_error(403, "AuthenticationFailed", str(exc))
    else:
        job = emu.store.get_job(job_id)
        file = next((f for f in job.files if f.id == file_id), None) if job else None
        if file is None or file.content is None:
            response = _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        else:
            response = Response(file.content, media_type="application/json")
    emu.stats.download(response.status_code)
    return response
