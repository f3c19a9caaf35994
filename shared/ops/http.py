"""The operator view's HTTP functions: request in, `shared.ops.query` call, response out.

JSON everywhere except ``GET /api/status`` (HTML). Errors are JSON too:
``{"error": {"code", "message", "whatToDo"}}`` with 400 (a bad filter), 404 (unknown job),
409 (a retry the job's state refuses) or 503 (storage unavailable: try again). Responses are
never cached (``Cache-Control: no-store``): they describe live jobs.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared.errors import OperatorRequestError, StorageTransientError
from shared.jobs import JobState
from shared.ops import page, query
from shared.ops.index import index_entity, list_item
from shared.ops.retry import retry_job
from shared.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = ["get_job", "get_stats", "get_status_page", "list_jobs", "post_retry"]

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_PAGE_FAILURES = 50
_PAGE_IN_FLIGHT = 100


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=_NO_STORE,
    )


def _error(exc: OperatorRequestError) -> func.HttpResponse:
    return _json(
        {"error": {"code": exc.code, "message": exc.message, "whatToDo": exc.what_to_do}},
        exc.status,
    )


def _answer(rt: Runtime, handler: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        rt.ensure_resources()  # a fresh deployment has no table yet: an empty view, not a 500
        return handler()
    except OperatorRequestError as exc:
        return _error(exc)
    except StorageTransientError as exc:
        log.warning("operator view: storage unavailable: %s", exc)
        return _error(
            OperatorRequestError(
                503,
                "StorageUnavailable",
                "the job table could not be read just now.",
                "Try again in a minute; if it persists, run `python -m shared.doctor`.",
            )
        )


def _int_param(req: func.HttpRequest, name: str, default: int) -> int:
    text = req.params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise OperatorRequestError(
            400, "BadParameter", f"{name}={text[:40]!r} is not a whole number.", "Give a number."
        ) from None


def list_jobs(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/jobs?state=&prefix=&since=&limit=&continuation=``"""

    def run() -> func.HttpResponse:
        page_ = query.list_jobs(
            rt,
            state=req.params.get("state") or None,
            prefix=req.params.get("prefix") or None,
            since=query.parse_since(req.params.get("since"), rt.clock()),
            limit=_int_param(req, "limit", 50),
            continuation=req.params.get("continuation") or None,
        )
        return _json(page_.to_json())

    return _answer(rt, run)


def get_job(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/jobs/{key}``"""
    return _answer(rt, lambda: _json(query.job_detail(rt, req.route_params.get("key", ""))))


def post_retry(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """``POST /api/jobs/{key}/retry``: 202 with a new attempt, 200 when one already exists."""

    def run() -> func.HttpResponse:
        result = retry_job(rt, req.route_params.get("key", ""))
        item = list_item(index_entity(result.record))
        if result.retried:
            message = "a new attempt is queued; the poller submits it on its next run."
        else:
            message = f"already retried; that attempt is {result.record.state}."
        return _json(
            {"retried": result.retried, "message": message, "job": item},
            202 if result.retried else 200,
        )

    return _answer(rt, run)


def get_stats(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/stats?hours=24``"""
    return _answer(rt, lambda: _json(query.stats(rt, _int_param(req, "hours", 24))))


def get_status_page(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/status``: the HTML page (`shared.ops.page`)."""

    def run() -> func.HttpResponse:
        hours = _int_param(req, "hours", 24)
        stats = query.stats(rt, hours)
        since = query.parse_since(f"{hours}h", rt.clock())
        failures = [
            item
            for state in (JobState.FAILED, JobState.REJECTED)
            for item in query.list_jobs(rt, state=state, since=since, limit=_PAGE_FAILURES).items
        ]
        failures.sort(key=lambda j: j["finished"] or "", reverse=True)
        active = sorted(rt.store.active(), key=lambda r: r.created, reverse=True)
        in_flight = [list_item(index_entity(r)) for r in active[:_PAGE_IN_FLIGHT]]
        nonce = secrets.token_urlsafe(16)
        html = page.render_status_page(
            stats=stats, in_flight=in_flight, failures=failures, now=rt.clock(), nonce=nonce
        )
        return func.HttpResponse(
            html,
            status_code=200,
            mimetype="text/html",
            charset="utf-8",
            headers={**_NO_STORE, "Content-Security-Policy": page.content_security_policy(nonce)},
        )

    return _answer(rt, run)
