"""Web hooks over real HTTP: challenge handshake, signed callbacks, ping and test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from devhost.services import Azurite, SpeechEmulator, wait_for
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.speech import admin, client, create_body, job_id, submit, upload, wait_done

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-for-tests"


@dataclass
class Received:
    event: str
    body: bytes
    signature: str | None
    query: dict[str, str]


@dataclass
class Receiver:
    url: str
    calls: list[Received] = field(default_factory=list)
    answer_challenge: bool = True
    fail_next: int = 0  # answer this many event callbacks with 500 first

    def events(self, name: str) -> list[Received]:
        return [c for c in self.calls if c.event.lower() == name.lower()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A small web hook receiver on a free port, run by uvicorn in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state = Receiver(url=f"http://127.0.0.1:{sock.getsockname()[1]}/hook")

    async def hook(request: Request) -> Response:
        event = request.headers.get("x-microsoftspeechservices-event", "")
        state.calls.append(
            Received(
                event=event,
                body=await request.body(),
                signature=request.headers.get("x-microsoftspeechservices-signature"),
                query=dict(request.query_params),
            )
        )
        if event.lower() == "challenge":
            if not state.answer_challenge:
                return PlainTextResponse("no", status_code=400)
            return PlainTextResponse(request.query_params["validationToken"])
        if state.fail_next > 0:
            state.fail_next -= 1
            return Response(status_code=500)
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hook", hook, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="receiver to start")
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)


def _verify(call: Received) -> None:
    expected = base64.b64encode(
        hmac.new(SECRET.encode("utf-8"), call.body, hashlib.sha256).digest()
    ).decode()
    assert call.signature == expected


def _register(api, receiver: Receiver, **events: bool) -> dict:
    response = api.post(
        "/webhooks",
        json={
            "displayName": "completion hook",
            "webUrl": receiver.url,
            "events": events or {"transcriptionCompletion": True},
            "properties": {"secret": SECRET},
        },
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    assert response.headers["Location"] == hook["self"]
    assert "secret" not in hook["properties"]
    return hook


def _hook_path(hook: dict) -> str:
    return f"/webhooks/{job_id(hook)}"


def test_challenge_then_signed_completion(
    speech_emulator_factory, azurite: Azurite, receiver: Receiver
) -> None:
    emulator: SpeechEmulator = speech_emulator_factory("--engine", "scripted", "--instant")
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api, admin(emulator) as adm:
        hook = _register(api, receiver)
        assert hook["status"] == "NotStarted"
        wait_for(
            lambda: api.get(_hook_path(hook)).json()["status"] == "Succeeded",
            timeout=10,
            what="challenge",
        )
        (challenge,) = receiver.events("challenge")
        assert challenge.query["validationToken"]
        entity = wait_done(api, submit(api, create_body([url])))
        wait_for(lambda: receiver.events("TranscriptionCompletion"), timeout=10, what="callback")
        (call,) = receiver.events("TranscriptionCompletion")
        _verify(call)
        payload = json.loads(call.body)
        assert payload["self"].split("?")[0] == entity["self"].split("?")[0]
        assert payload["status"] == "Succeeded"
        # Only registered events are sent.
        assert not receiver.events("TranscriptionCreation")
        stats = adm.get("/stats").json()["webhookDeliveries"]
        assert stats["TranscriptionCompletion"] == {"200": 1}
        assert stats["challenge"] == {"200": 1}


def test_failed_challenge_marks_hook_failed(speech_emulator_factory, receiver: Receiver) -> None:
    emulator = speech_emulator_factory("--engine", "scripted")
    receiver.answer_challenge = False
    with client(emulator) as api:
        hook = _register(api, receiver)
        final = wait_for(
            lambda: (h := api.get(_hook_path(hook)).json())["status"] == "Failed" and h,
            timeout=10,
            what="challenge to fail",
        )
        assert final["properties"]["error"]["code"] == "InvalidCallbackUri"


def test_crud_ping_and_test(speech_emulator_factory, azurite: Azurite, receiver: Receiver) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    with client(emulator) as api:
        hook = _register(api, receiver, transcriptionCompletion=True, transcriptionCreation=True)
        path = _hook_path(hook)
        wait_for(lambda: api.get(path).json()["status"] == "Succeeded", timeout=10, what="ok")
        listed = api.get("/webhooks").json()
        assert [h["self"] for h in listed["values"]] == [hook["self"]]
        # Nothing happened yet: :test has no entity to send.
        assert api.post(f"{path}:test").status_code == 204
        assert api.post(f"{path}:ping").status_code == 202
        wait_for(lambda: receiver.events("ping"), timeout=10, what="ping")
        _verify(receiver.events("ping")[0])
        assert json.loads(receiver.events("ping")[0].body)["self"] == hook["self"]
        url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
        wait_done(api, submit(api, create_body([url])))
        wait_for(lambda: receiver.events("TranscriptionCompletion"), timeout=10, what="done")
        assert receiver.events("TranscriptionCreation")
        assert api.post(f"{path}:test").status_code == 202
        wait_for(
            lambda: len(receiver.events("TranscriptionCompletion")) == 2, timeout=10, what="test"
        )
        # Update: a new secret (empty = no signature), a new name.
        patched = api.patch(path, json={"displayName": "renamed", "properties": {"secret": ""}})
        assert patched.status_code == 200
        assert patched.json()["displayName"] == "renamed"
        api.post(f"{path}:ping")
        wait_for(lambda: len(receiver.events("ping")) == 2, timeout=10, what="second ping")
        assert receiver.events("ping")[1].signature is None
        bad = api.post(
            "/webhooks",
            json={
                "displayName": "x",
                "webUrl": "not a url",
                "events": {"transcriptionCompletion": True},
            },
        )
        assert bad.status_code == 400
        assert bad.json()["innerError"]["code"] == "InvalidCallbackUri"
        bad_events = api.post(
            "/webhooks",
            json={"displayName": "x", "webUrl": receiver.url, "events": {"somethingElse": True}},
        )
        assert bad_events.json()["innerError"]["code"] == "InvalidWebHookEventKind"
        assert api.delete(path).status_code == 204
        assert api.get(path).status_code == 404
        assert api.delete(path).status_code == 404


def test_failed_callbacks_are_retried(
    speech_emulator_factory, azurite: Azurite, receiver: Receiver
) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    url = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    with client(emulator) as api, admin(emulator) as adm:
        hook = _register(api, receiver)
        wait_for(
            lambda: api.get(_hook_path(hook)).json()["status"] == "Succeeded",
            timeout=10,
            what="challenge",
        )
        receiver.fail_next = 1
        wait_done(api, submit(api, create_body([url])))
        wait_for(
            lambda: len(receiver.events("TranscriptionCompletion")) == 2, timeout=10, what="retry"
        )
        calls = receiver.events("TranscriptionCompletion")
        assert calls[0].body == calls[1].body
        _verify(calls[1])
        deliveries = adm.get("/stats").json()["webhookDeliveries"]["TranscriptionCompletion"]
        assert deliveries == {"500": 1, "200": 1}
