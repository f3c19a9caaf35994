"""`SpeechClient.webhooks` against httpx.MockTransport: wire shapes, retries, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.errors import SpeechNotFoundError, SpeechTransientError
from shared.retry import set_testing
from shared.secret import Secret
from shared.speech_client import SpeechClient
from shared.speech_webhooks import SpeechWebhooks, hook_id_of

ENDPOINT = "https://speech.example"
KEY = "k" * 32
SECRET = "webhook-secret-for-tests"
HOOK = {"self": f"{ENDPOINT}/speechtotext/webhooks/h1", "status": "Succeeded"}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with set_testing(True, attempts=3, cap=True):
        yield


def hooks(handler: Handler, seen: list[httpx.Request]) -> SpeechWebhooks:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = SpeechClient(ENDPOINT, key=KEY, transport=httpx.MockTransport(record))
    return client.webhooks


def no_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


def test_create_sends_the_documented_body_with_the_secret_revealed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={**json.loads(request.content), **HOOK})

    created = hooks(handler, seen).create(
        web_url="https://app.example/api/speech-webhook",
        events={"transcriptionCompletion": True},
        secret=Secret(SECRET),
    )
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/speechtotext/webhooks"
    assert request.url.params["api-version"] == "2024-11-15"
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert json.loads(request.content) == {
        "displayName": "speech-batch-functions completion push",
        "webUrl": "https://app.example/api/speech-webhook",
        "events": {"transcriptionCompletion": True},
        "properties": {"secret": SECRET},
    }
    assert hook_id_of(created) == "h1"


def test_create_without_a_secret_sends_no_properties() -> None:
    seen: list[httpx.Request] = []
    api = hooks(lambda request: httpx.Response(201, json=HOOK), seen)
    api.create(web_url="http://localhost:7071/api/h", events={"ping": True}, secret=None)
    assert "properties" not in json.loads(seen[0].content)


def test_create_is_tried_once_and_wants_the_new_hook_back() -> None:
    seen: list[httpx.Request] = []
    api = hooks(lambda request: httpx.Response(201, json={"status": "NotStarted"}), seen)
    with pytest.raises(SpeechTransientError, match="did not return the new web hook"):
        api.create(web_url="https://app.example/h", events={"ping": True}, secret=None)
    assert len(seen) == 1  # a second POST could register a second hook


def test_create_rejects_a_relative_url_before_any_request() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        hooks(no_request, []).create(
            web_url="/api/speech-webhook", events={"ping": True}, secret=None
        )


@pytest.mark.parametrize("bad_id", ["", "../transcriptions/x", "h1?x=1", "h1#f"])
def test_ids_that_would_change_the_path_are_refused(bad_id: str) -> None:
    api = hooks(no_request, [])
    for operation in (api.get, api.delete, api.ping, api.test):
        with pytest.raises(ValueError, match="not a web hook id"):
            operation(bad_id)


def test_get_is_retried_and_delete_is_not() -> None:
    seen: list[httpx.Request] = []
    replies = [httpx.Response(503), httpx.Response(200, json=HOOK), httpx.Response(503)]
    api = hooks(lambda request: replies.pop(0), seen)
    assert api.get("h1") == HOOK
    with pytest.raises(SpeechTransientError):
        api.delete("h1")  # after a lost answer, a retry would report the hook as missing
    assert [r.method for r in seen] == ["GET", "GET", "DELETE"]


def test_a_missing_hook_is_not_found() -> None:
    api = hooks(lambda request: httpx.Response(404, json={"code": "NotFound"}), [])
    with pytest.raises(SpeechNotFoundError):
        api.get("gone")


def test_list_follows_pages_and_skips_entries_that_are_not_objects() -> None:
    seen: list[httpx.Request] = []
    pages = [
        {"values": [HOOK, "junk"], "@nextLink": f"{ENDPOINT}/speechtotext/webhooks?skip=2"},
        {"values": [{**HOOK, "self": f"{ENDPOINT}/speechtotext/webhooks/h2"}]},
    ]
    api = hooks(lambda request: httpx.Response(200, json=pages.pop(0)), seen)
    assert [hook_id_of(h) for h in api.list()] == ["h1", "h2"]
    assert seen[0].url.params["top"] == "100"
    assert seen[1].url.params["skip"] == "2"


def test_ping_and_test_post_to_their_actions() -> None:
    seen: list[httpx.Request] = []
    replies = [httpx.Response(204), httpx.Response(204), httpx.Response(202)]
    api = hooks(lambda request: replies.pop(0), seen)
    api.ping("h1")
    assert api.test("h1") is False  # 204: no event to replay, nothing sent
    assert api.test("h1") is True
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/speechtotext/webhooks/h1:ping"),
        ("POST", "/speechtotext/webhooks/h1:test"),
        ("POST", "/speechtotext/webhooks/h1:test"),
    ]


def test_hook_id_of_reads_the_last_path_segment() -> None:
    entity: dict[str, Any] = {"self": f"{ENDPOINT}/speechtotext/webhooks/h9?api-version=x"}
    assert hook_id_of(entity) == "h9"
