"""Speech web hook callbacks, decided purely: challenge, signature, event, payload.

The Speech service calls a registered web hook URL (see `shared.webhook_admin`) with:

* the registration **challenge**: event ``challenge`` and a ``validationToken`` query
  parameter; the receiver proves it wanted the hook by answering 200 with the token as body;
* **events**: a POST whose ``X-MicrosoftSpeechServices-Event`` header names the event
  (``TranscriptionCompletion``, ``ping``, ...; compared case-insensitively) and, when the
  hook was registered with a secret, ``X-MicrosoftSpeechServices-Signature`` =
  base64(HMAC-SHA256(key = secret as UTF-8, message = the raw body)). A transcription
  event's body is the Transcription entity (``self``, ``displayName``, ``status``, ...).

`interpret` turns one request into either a `Reply` to send as is or a `Completion` for the
handler (`shared.webhook_handler`) to act on. No I/O here, and nothing derived from the
secret or the signature ever appears in a reply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.speech_models import Transcription

__all__ = [
    "COMPLETION_EVENT",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "VALIDATION_TOKEN_PARAM",
    "Completion",
    "Reply",
    "WebhookPayloadError",
    "header",
    "interpret",
    "parse_transcription",
    "sign",
    "signature_matches",
]

EVENT_HEADER: Final = "X-MicrosoftSpeechServices-Event"
SIGNATURE_HEADER: Final = "X-MicrosoftSpeechServices-Signature"
VALIDATION_TOKEN_PARAM: Final = "validationToken"  # noqa: S105 - a parameter name
# Event types as they appear in the header, lower-cased (the header is compared
# case-insensitively; the service sends e.g. "TranscriptionCompletion", "ping", "challenge").
COMPLETION_EVENT: Final = "transcriptioncompletion"
_CHALLENGE_EVENT: Final = "challenge"
_PING_EVENT: Final = "ping"
# The token is echoed back verbatim: accept only what a service-generated token looks like
# (printable ASCII, bounded), so the endpoint cannot be used to reflect arbitrary content.
_MAX_TOKEN_CHARS: Final = 1024
_MAX_SIGNATURE_CHARS: Final = 512


class WebhookPayloadError(ValueError):
    """A callback body that is not a Transcription entity; the message says what is wrong."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer to send back: `status` and a short plain-text `text`."""

    status: int
    text: str


@dataclass(frozen=True)
class Completion:
    """A verified completion event: the service says `transcription` has finished.

    `signed` is True when the body's signature was checked against WEBHOOK_SECRET; an
    unsigned callback is only a hint, to be confirmed with the service before acting on it.
    """

    transcription: Transcription
    signed: bool


def sign(secret: str, body: bytes) -> str:
    """The ``X-MicrosoftSpeechServices-Signature`` value for `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` is the body's HMAC under `secret` (constant-time comparison)."""
    if not signature or len(signature) > _MAX_SIGNATURE_CHARS:
        return False
    expected = sign(secret, body).encode("ascii")
    # Bytes, not str: compare_digest rejects non-ASCII str, and a header may hold anything.
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Header `name` from any mapping, matched case-insensitively (HTTP header names are)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def parse_transcription(body: bytes) -> Transcription:
    """The Transcription entity a transcription event carries.

    Raises `WebhookPayloadError` naming the problem (not JSON, not an object, no ``self``
    URL, unknown ``status``...).
    """
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise WebhookPayloadError(
            f"the body is not JSON ({exc}); a transcription event carries the Transcription "
            "entity as JSON"
        ) from None
    if not isinstance(data, Mapping):
        raise WebhookPayloadError(
            f"the body is JSON {type(data).__name__}, expected a Transcription object"
        )
    try:
        return Transcription.from_json(data)
    except ValueError as exc:
        raise WebhookPayloadError(f"the body is not a Transcription entity: {exc}") from None


def _valid_token(token: str | None) -> bool:
    return (
        token is not None
        and 0 < len(token) <= _MAX_TOKEN_CHARS
        and all(" " < ch <= "~" for ch in token)
    )


def interpret(
    *,
    method: str,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    body: bytes,
    secret: str,
) -> Reply | Completion:
    """Decide what one web hook request means.

    Order matters: the challenge is answered first (it has no body to sign and no effect);
    every other request must carry a valid signature when `secret` is set (401 otherwise,
    before its body is even parsed); then the event decides: ``ping`` is acknowledged,
    ``TranscriptionCompletion`` with a terminal status becomes a `Completion`, anything else
    is acknowledged and ignored. A completion body that is not a Transcription is a 400.
    """
    method = method.upper()
    event = (header(headers, EVENT_HEADER) or "").strip().lower()
    token = params.get(VALIDATION_TOKEN_PARAM)
    if event == _CHALLENGE_EVENT or (token is not None and not event):
        if not _valid_token(token):
            return Reply(
                400,
                f"challenge rejected: the '{VALIDATION_TOKEN_PARAM}' query parameter is missing "
                f"or not a plain token (printable ASCII, at most {_MAX_TOKEN_CHARS} characters)",
            )
        assert token is not None
        return Reply(200, token)
    if method != "POST":
        return Reply(
            405 if method != "GET" else 400,
            f"{method} is only accepted for the registration challenge (with "
            f"'{VALIDATION_TOKEN_PARAM}'); events are POSTed",
        )
    signed = bool(secret)
    if signed:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            return Reply(
                401,
                f"missing {SIGNATURE_HEADER} header: this endpoint requires signed callbacks; "
                "register the web hook with the same secret as the app's WEBHOOK_SECRET",
            )
        if not signature_matches(secret, body, signature):
            return Reply(
                401,
                f"{SIGNATURE_HEADER} does not match the body: the web hook's secret differs "
                "from WEBHOOK_SECRET, or the body was altered",
            )
    if not event:
        return Reply(400, f"missing {EVENT_HEADER} header: not a Speech web hook callback")
    if event == _PING_EVENT:
        return Reply(200, "pong")
    if event != COMPLETION_EVENT:
        return Reply(202, f"event {event!r} ignored: only TranscriptionCompletion is acted on")
    try:
        transcription = parse_transcription(body)
    except WebhookPayloadError as exc:
        return Reply(400, f"{EVENT_HEADER} {event!r}: {exc}")
    if not transcription.status.is_terminal:
        return Reply(
            202,
            f"transcription {transcription.id} is {transcription.status}, not finished; ignored",
        )
    return Completion(transcription, signed=signed)
