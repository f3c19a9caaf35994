"""Fixture app: HTTP triggers echoing what the function received."""

from __future__ import annotations

import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="hello/{who}", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    logging.info("hello called for %s", req.route_params.get("who"))
    payload = {
        "method": req.method,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-test"),
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"x-echo": "1"}
    )


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.route(route="out", methods=["GET"])
@app.generic_output_binding(arg_name="res", type="http")
def via_out(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse("set through Out", status_code=202))
