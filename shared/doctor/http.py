"""The doctor as an HTTP function (``GET /api/doctor``, admin key): the same report, as JSON.

200 when no check failed (warnings allowed), 503 when one did, so a deployment pipeline or
a probe can act on the status alone. Runs with the app's own environment and identity,
which is what a local run cannot check (the app's roles, its network path).
"""

from __future__ import annotations

import os

import azure.functions as func

from shared.doctor import run_doctor

__all__ = ["handle_http_request"]


def handle_http_request(req: func.HttpRequest) -> func.HttpResponse:
    """Run every check and answer with the report (``{"ok", "elapsedSeconds", "checks"}``)."""
    report = run_doctor(os.environ, webhook_url=req.params.get("webhookUrl", ""))
    return func.HttpResponse(
        report.json_text(),
        status_code=200 if report.ok else 503,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
