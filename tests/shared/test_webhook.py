"""Web hook decisions (pure): challenge, signature, event, payload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from shared.speech_models import TranscriptionStatus
from shared.webhook import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Completion,
    Reply,
    WebhookPayloadError,
    header,
    interpret,
    parse_transcription,
    sign,
    signature_matches,
)

SECRET = "webhook-secret-for-tests"
TID = "0f3a6b1c-5d2e-4f70-9a8b-1c2d3e4f5a6b"


def entity(status: str = "Succeeded", display_name: str = "tj-abc", **extra: Any) -> bytes:
    data = {
        "self": f"https://speech.example/speechtotext/transcriptions/{TID}?api-version=2024-11-15",
        "displayName": display_name,
        "status": status,
        "createdDateTime": "2026-11-21T08:00:00Z",
        "lastActionDateTime": "2026-11-21T08:01:00Z",
        **extra,
    }
    return json.dumps(data).encode()


def call(
    body: bytes = b"",
    *,
    event: str | None = "TranscriptionCompletion",
    signature: str | None = None,
    secret: str = SECRET,
    method: str = "POST",
    params: dict[str, str] | None = None,
    sign_it: bool = True,
) -> Reply | Completion:
    headers = {"Content-Type": "application/json"}
    if event is not None:
        headers[EVENT_HEADER] = event
    if signature is None and sign_it and secret:
        signature = sign(secret, body)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return interpret(method=method, headers=headers, params=params or {}, body=body, secret=secret)


# ------------------------------------------------------------------ signature


def test_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = entity()
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(SECRET, body) == expected
    assert signature_matches(SECRET, body, expected)


def test_signature_uses_the_secret_as_utf8() -> None:
    secret = "clé-secrète-ü"
    body = b'{"a": 1}'
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert signature_matches(secret, body, expected)


@pytest.mark.parametrize(
    "signature",
    [None, "", "not base64 at all", "ünïcode", "A" * 10_000, sign("other-secret", b"x")],
)
def test_bad_signatures_do_not_match(signature: str | None) -> None:
    assert not signature_matches(SECRET, b"x", signature)


def test_tampered_body_does_not_match() -> None:
    body = entity()
    good = sign(SECRET, body)
    assert not signature_matches(SECRET, body.replace(b"Succeeded", b"Failed"), good)
    assert not signature_matches(SECRET, body + b" ", good)


def test_header_lookup_is_case_insensitive() -> None:
    headers = {"x-microsoftspeechservices-event": "ping"}
    assert header(headers, EVENT_HEADER) == "ping"
    assert header(headers, SIGNATURE_HEADER) is None


# ------------------------------------------------------------------ challenge


@pytest.mark.parametrize("event", ["challenge", "Challenge", "CHALLENGE", None])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_challenge_echoes_the_token(event: str | None, method: str) -> None:
    reply = call(event=event, method=method, params={"validationToken": "tok-123_abc"})
    assert reply == Reply(200, "tok-123_abc")


def test_challenge_needs_no_signature_even_with_a_secret() -> None:
    reply = call(event="challenge", params={"validationToken": "t"}, sign_it=False)
    assert reply == Reply(200, "t")


@pytest.mark.parametrize(
    "params", [{}, {"validationToken": ""}, {"validationToken": "<script>x</script> y"}]
)
def test_challenge_without_a_plain_token_is_rejected(params: dict[str, str]) -> None:
    reply = call(event="challenge", params=params)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert "validationToken" in reply.text


def test_get_without_a_token_is_a_400() -> None:
    reply = call(method="GET", event=None)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert "challenge" in reply.text


# ------------------------------------------------------------------ authentication


def test_valid_signed_completion_is_a_completion() -> None:
    decision = call(entity())
    assert isinstance(decision, Completion)
    assert decision.signed
    assert decision.transcription.id == TID
    assert decision.transcription.display_name == "tj-abc"
    assert decision.transcription.status is TranscriptionStatus.SUCCEEDED
    assert "?" not in decision.transcription.self_url


def test_missing_signature_is_401_when_a_secret_is_set() -> None:
    reply = call(entity(), sign_it=False)
    assert isinstance(reply, Reply)
    assert reply.status == 401
    assert SIGNATURE_HEADER in reply.text
    assert "WEBHOOK_SECRET" in reply.text


def test_tampered_body_is_401() -> None:
    body = entity()
    reply = call(body.replace(b"tj-abc", b"tj-xyz"), signature=sign(SECRET, body))
    assert isinstance(reply, Reply)
    assert reply.status == 401


def test_wrong_secret_is_401_and_reveals_nothing() -> None:
    body = entity()
    wrong = sign("not-the-secret", body)
    reply = call(body, signature=wrong)
    assert isinstance(reply, Reply)
    assert reply.status == 401
    assert SECRET not in reply.text
    assert wrong not in reply.text
    assert sign(SECRET, body) not in reply.text


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    reply = call(b"{not json", sign_it=False)
    assert isinstance(reply, Reply)
    assert reply.status == 401


def test_without_a_secret_unsigned_completions_are_unverified_hints() -> None:
    decision = call(entity(), secret="")
    assert isinstance(decision, Completion)
    assert not decision.signed


# ------------------------------------------------------------------ events


@pytest.mark.parametrize(
    "event", ["TranscriptionCompletion", "transcriptioncompletion", " TRANSCRIPTIONCOMPLETION "]
)
def test_completion_event_name_is_case_insensitive(event: str) -> None:
    assert isinstance(call(entity(), event=event), Completion)


def test_failed_transcription_is_a_completion_too() -> None:
    body = entity("Failed", properties={"error": {"code": "InvalidData", "message": "bad"}})
    decision = call(body)
    assert isinstance(decision, Completion)
    assert decision.transcription.status is TranscriptionStatus.FAILED
    assert decision.transcription.error_code == "InvalidData"


def test_ping_is_acknowledged() -> None:
    assert call(b'{"self": "x"}', event="Ping") == Reply(200, "pong")


@pytest.mark.parametrize(
    "event", ["TranscriptionCreation", "TranscriptionProcessing", "TranscriptionDeletion", "x"]
)
def test_other_events_are_acknowledged_and_ignored(event: str) -> None:
    reply = call(entity("Running"), event=event)
    assert isinstance(reply, Reply)
    assert reply.status == 202
    assert "ignored" in reply.text


def test_completion_with_a_non_terminal_status_is_ignored() -> None:
    reply = call(entity("Running"))
    assert isinstance(reply, Reply)
    assert reply.status == 202


def test_missing_event_header_is_a_400() -> None:
    reply = call(entity(), event=None)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert EVENT_HEADER in reply.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a Transcription object"),
        (b'{"status": "Succeeded"}', "'self'"),
        (
            json.dumps({"self": f"https://h/transcriptions/{TID}", "status": "Done"}).encode(),
            "Done",
        ),
    ],
)
def test_malformed_completion_is_a_400_saying_why(body: bytes, needle: str) -> None:
    reply = call(body)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert needle in reply.text


def test_parse_transcription_raises_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError, match="not JSON"):
        parse_transcription(b"")


def test_other_methods_are_refused() -> None:
    reply = call(entity(), method="PUT")
    assert isinstance(reply, Reply)
    assert reply.status == 405
