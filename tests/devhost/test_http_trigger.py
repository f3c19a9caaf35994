"""HTTP triggers served over real HTTP on 127.0.0.1."""

import logging

import httpx
import pytest

from devhost.http_server import starlette_paths
from tests.devhost.conftest import load_fixture_app


@pytest.fixture
def http_host(make_host):
    host = make_host(load_fixture_app("http_app"), http_port=0)
    host.start()
    return host


def test_round_trip(http_host, caplog):
    url = f"http://127.0.0.1:{http_host.http_port}/api/hello/ada?lang=en"
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = httpx.post(url, content=b"payload", headers={"x-test": "yes"})
    assert response.status_code == 201
    assert response.headers["x-echo"] == "1"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "method": "POST",
        "params": {"lang": "en"},
        "route_params": {"who": "ada"},
        "body": "payload",
        "header": "yes",
    }
    assert any(m.startswith("Executing 'Functions.hello'") for m in caplog.messages)
    assert any(
        m.startswith("Executed 'Functions.hello' (Succeeded") and "Duration=" in m
        for m in caplog.messages
    )


def test_method_not_allowed_and_unknown_route(http_host):
    base = f"http://127.0.0.1:{http_host.http_port}/api"
    assert httpx.delete(f"{base}/hello/ada").status_code == 405
    assert httpx.get(f"{base}/nope").status_code == 404


def test_failing_function_returns_500_and_logs_failure(http_host, caplog):
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = httpx.get(f"http://127.0.0.1:{http_host.http_port}/api/boom")
    assert response.status_code == 500
    failed = [
        r for r in caplog.records if r.getMessage().startswith("Executed 'Functions.boom' (Failed")
    ]
    assert failed
    assert failed[0].exc_info is not None


def test_banner_lists_functions_with_url(http_host):
    banner = http_host.banner()
    assert f"hello: [GET,POST] http://localhost:{http_host.http_port}/api/hello/{{who}}" in banner
    assert "boom: [GET]" in banner


@pytest.mark.parametrize(
    ("route", "paths"),
    [
        ("hello/{who}", ["/hello/{who}"]),
        ("files/{*rest}", ["/files/{rest:path}"]),
        ("items/{id:int}", ["/items/{id:int}"]),
        ("items/{id:int?}", ["/items/{id:int}", "/items"]),
        ("by/{name:alpha}", ["/by/{name}"]),
    ],
)
def test_route_templates(route, paths):
    assert starlette_paths(route) == paths


def test_response_set_through_an_out_parameter(http_host):
    response = httpx.get(f"http://127.0.0.1:{http_host.http_port}/api/out")
    assert response.status_code == 202
    assert response.text == "set through Out"


def test_a_stopped_host_cannot_be_restarted(http_host):
    http_host.stop()
    with pytest.raises(RuntimeError, match=r"build a new one"):
        http_host.start()
