"""The web hook command line: its settings (the app's, storage aside), its output, its errors.

The Speech side is an httpx.MockTransport under the command's own client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from shared.retry import set_testing
from shared.webhook_admin import AdminError, admin_settings, event_flags, public, run

ENDPOINT = "https://speech.example"
KEY = "k3y-for-the-admin-tests-0123456789"
SECRET = "webhook-secret-for-tests"
URL = "https://app.example/api/speech-webhook"
HOOK = {"self": f"{ENDPOINT}/speechtotext/webhooks/h1", "status": "Succeeded", "webUrl": URL}
BASE_ENV = {"SPEECH_ENDPOINT": ENDPOINT, "SPEECH_KEY": KEY}  # no storage connection at all


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with set_testing(True, attempts=10, cap=True):
        yield


class Service:
    """Answers with `reply` and records every request."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)


def created(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        return httpx.Response(201, json={**json.loads(request.content), **HOOK})
    return httpx.Response(200, json=HOOK)


def no_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


# ------------------------------------------------------------------ pure helpers


def test_event_flags_accept_either_spelling() -> None:
    assert event_flags(["TranscriptionCompletion", "ping"]) == {
        "transcriptionCompletion": True,
        "ping": True,
    }


def test_event_flags_reject_unknown_names_listing_known_ones() -> None:
    with pytest.raises(AdminError, match="transcriptionCompletion"):
        event_flags(["TranscriptionSucceeded"])
    with pytest.raises(AdminError, match="at least one"):
        event_flags([])


def test_public_hides_secret_and_url_queries() -> None:
    shown = public(
        {
            "self": "https://s/speechtotext/webhooks/h1?api-version=x",
            "webUrl": "https://app/api/speech-webhook?code=function-key",
            "properties": {"secret": SECRET, "apiVersion": "v2024-11-15"},
            "links": {"ping": "https://s/..."},
        }
    )
    text = json.dumps(shown)
    assert SECRET not in text
    assert "function-key" not in text
    assert shown["properties"] == {"apiVersion": "v2024-11-15"}
    assert shown["self"] == "https://s/speechtotext/webhooks/h1"


# ------------------------------------------------------------------ settings


def test_settings_need_no_storage_connection_and_are_the_apps() -> None:
    settings = admin_settings({**BASE_ENV, "SPEECH_API_VERSION": "2025-10-15"})
    assert settings.speech_endpoint == ENDPOINT
    assert settings.speech_key.reveal() == KEY
    assert settings.speech_api_version == "2025-10-15"


def test_settings_keep_a_real_storage_connection_and_honour_storage_connection() -> None:
    env = {**BASE_ENV, "AzureWebJobsStorage": "UseDevelopmentStorage=true;x"}
    assert admin_settings(env).storage_connection == "AzureWebJobsStorage"
    named = admin_settings({**BASE_ENV, "STORAGE_CONNECTION": "Jobs"})  # Jobs itself unset
    assert named.storage_connection == "Jobs"


def test_list_uses_the_settings_and_no_storage() -> None:
    service = Service(lambda request: httpx.Response(200, json={"values": [HOOK]}))
    env = {**BASE_ENV, "SPEECH_API_VERSION": "2025-10-15"}
    assert run(["list"], env=env, transport=service.transport) == 0
    (request,) = service.requests
    assert request.url.host == "speech.example"
    assert request.url.params["api-version"] == "2025-10-15"
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY


def test_endpoint_option_overrides_the_setting() -> None:
    service = Service(lambda request: httpx.Response(200, json={"values": []}))
    code = run(
        ["--endpoint", "https://other.example/", "list"], env=BASE_ENV, transport=service.transport
    )
    assert code == 0
    assert service.requests[0].url.host == "other.example"


def test_max_attempts_come_from_the_settings() -> None:
    service = Service(lambda request: httpx.Response(503))
    env = {**BASE_ENV, "SPEECH_MAX_ATTEMPTS": "2"}
    assert run(["show", "h1"], env=env, transport=service.transport) == 1
    assert len(service.requests) == 2


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"SPEECH_KEY": KEY}, ["SPEECH_ENDPOINT", "missing", "--endpoint"]),
        ({**BASE_ENV, "SPEECH_ENDPOINT": "ftp://x"}, ["SPEECH_ENDPOINT", "http(s)"]),
        ({**BASE_ENV, "SPEECH_API_VERSION": "v3.2"}, ["SPEECH_API_VERSION", "2024-11-15"]),
        ({**BASE_ENV, "SPEECH_MAX_ATTEMPTS": "lots"}, ["SPEECH_MAX_ATTEMPTS", "integer"]),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_it(
    env: dict[str, str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["list"], env=env, transport=httpx.MockTransport(no_request)) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err


# ------------------------------------------------------------------ register


def test_register_signs_with_the_webhook_secret_setting(capsys: pytest.CaptureFixture[str]) -> None:
    service = Service(created)
    env = {**BASE_ENV, "WEBHOOK_SECRET": SECRET}
    code = run(
        ["register", "--url", f"{URL}?code=fn-key", "--wait", "0"],
        env=env,
        transport=service.transport,
    )
    assert code == 0
    (request,) = service.requests
    assert json.loads(request.content)["properties"] == {"secret": SECRET}
    out = capsys.readouterr().out
    assert "registered web hook h1 -> https://app.example/api/speech-webhook (signed: True)" in out
    assert SECRET not in out
    assert "fn-key" not in out


def test_register_reads_a_named_variable_instead(capsys: pytest.CaptureFixture[str]) -> None:
    service = Service(created)
    env = {**BASE_ENV, "WEBHOOK_SECRET": "the-apps-own-secret", "OTHER": SECRET}
    argv = ["register", "--url", URL, "--secret-from-env", "OTHER", "--wait", "0"]
    assert run(argv, env=env, transport=service.transport) == 0
    assert json.loads(service.requests[0].content)["properties"] == {"secret": SECRET}


@pytest.mark.parametrize(
    ("extra", "name"), [([], "WEBHOOK_SECRET"), (["--secret-from-env", "MINE"], "MINE")]
)
def test_register_refuses_without_a_secret(
    extra: list[str], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["register", "--url", URL, *extra]
    assert run(argv, env=BASE_ENV, transport=httpx.MockTransport(no_request)) == 2
    err = capsys.readouterr().err
    assert f"{name} is not set" in err
    assert "--no-secret" in err


def test_register_unsigned_on_request() -> None:
    service = Service(created)
    argv = ["register", "--url", URL, "--no-secret", "--wait", "0"]
    assert run(argv, env=BASE_ENV, transport=service.transport) == 0
    assert "properties" not in json.loads(service.requests[0].content)


def test_register_waits_for_the_challenge_and_fails_when_it_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = {**HOOK, "status": "Failed", "properties": {"error": {"message": "no answer"}}}
    replies = [
        httpx.Response(201, json={**HOOK, "status": "NotStarted"}),
        httpx.Response(200, json=failed),
    ]
    service = Service(lambda request: replies.pop(0))
    argv = ["register", "--url", URL, "--no-secret", "--wait", "5"]
    assert run(argv, env=BASE_ENV, transport=service.transport) == 1
    assert "the challenge failed: no answer" in capsys.readouterr().err
    assert [r.method for r in service.requests] == ["POST", "GET"]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["show", "../transcriptions/x"], "not a web hook id"),
        (["register", "--url", "/api/h", "--no-secret"], "absolute http(s) URL"),
        (["register", "--url", URL, "--no-secret", "--events", "Nope"], "unknown web hook event"),
    ],
)
def test_bad_input_is_a_usage_error_before_any_request(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv, env=BASE_ENV, transport=httpx.MockTransport(no_request)) == 2
    assert needle in capsys.readouterr().err


def test_a_service_error_fails_with_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    service = Service(lambda request: httpx.Response(404, json={"code": "NotFound"}))
    assert run(["delete", "h1"], env=BASE_ENV, transport=service.transport) == 1
    assert "HTTP 404" in capsys.readouterr().err
