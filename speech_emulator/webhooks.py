"""Web hook callbacks: the registration challenge, ping/test events and job events.

Callbacks are POSTs carrying ``X-MicrosoftSpeechServices-Event`` and, when the hook has a
secret, ``X-MicrosoftSpeechServices-Signature`` = base64(HMAC-SHA256(secret, raw body)).
They run on a small thread pool with a few retries, never on the request path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from speech_emulator.clock import Clock
from speech_emulator.stats import Stats
from speech_emulator.store import Store, WebHook

log = logging.getLogger(__name__)

EVENT_HEADER = "X-MicrosoftSpeechServices-Event"
SIGNATURE_HEADER = "X-MicrosoftSpeechServices-Signature"
RETRY_DELAYS_S = (0.2, 1.0, 3.0)  # after the first try; then the callback is dropped

# camelCase name in WebHookEvents -> event type in the header.
TRANSCRIPTION_EVENTS = {
    "transcriptionCreation": "TranscriptionCreation",
    "transcriptionProcessing": "TranscriptionProcessing",
    "transcriptionCompletion": "TranscriptionCompletion",
    "transcriptionDeletion": "TranscriptionDeletion",
}


def signature(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Notifier:
    """Sends callbacks to registered web hooks."""

    def __init__(self, store: Store, stats: Stats, clock: Clock, workers: int = 4) -> None:
        self._store = store
        self._stats = stats
        self._clock = clock
        self._client = httpx.Client(timeout=10.0)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        # Last entity body per event name, for `:test`.
        self._last: dict[str, Callable[[WebHook], bytes]] = {}

    def close(self) -> None:
        """Stop sending (pending callbacks are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _post(
        self, hook: WebHook, event_type: str, body: bytes, retries: bool = True
    ) -> int | None:
        headers = {"Content-Type": "application/json", EVENT_HEADER: event_type}
        if hook.secret:
            headers[SIGNATURE_HEADER] = signature(hook.secret, body)
        delays = (0.0, *RETRY_DELAYS_S) if retries else (0.0,)
        status: int | None = None
        for delay in delays:
            if delay:
                time.sleep(delay)  # retry back-off on a background thread
            try:
                status = self._client.post(hook.web_url, content=body, headers=headers).status_code
                outcome = str(status)
            except httpx.HTTPError as exc:
                status, outcome = None, type(exc).__name__
            self._stats.webhook(event_type, outcome)
            if status is not None and 200 <= status < 300:
                return status
        log.warning("web hook %s: %s callback not delivered", hook.id, event_type)
        return status

    def challenge(self, hook_id: str) -> None:
        """Run the registration handshake in the background; sets the hook's status."""
        self._pool.submit(self._challenge, hook_id)

    def _challenge(self, hook_id: str) -> None:
        hook = self._store.get_hook(hook_id)
        if hook is None:
            return
        token = secrets.token_urlsafe(24)
        error: tuple[str, str] | None = None
        try:
            response = self._client.post(
                hook.web_url, params={"validationToken": token}, headers={EVENT_HEADER: "challenge"}
            )
            self._stats.webhook("challenge", str(response.status_code))
            if response.status_code != 200 or response.text.strip() != token:
                error = (
                    "InvalidCallbackUri",
                    f"The challenge to {hook.web_url} failed: expected 200 with the "
                    f"validationToken as body, got {response.status_code}.",
                )
        except httpx.HTTPError as exc:
            self._stats.webhook("challenge", type(exc).__name__)
            error = ("InvalidCallbackUri", f"The challenge to {hook.web_url} failed: {exc}.")

        def apply(h: WebHook) -> None:
            h.status = "Failed" if error else "Succeeded"
            h.error = error
            h.last_action = self._clock.now()

        self._store.update_hook(hook_id, apply)

    def ping(self, hook: WebHook, body: bytes) -> None:
        """Send a ping event with the hook's own entity as body."""
        self._pool.submit(self._post, hook, "ping", body, False)

    def test(self, hook: WebHook) -> bool:
        """Send the last entity of each registered event type; False when there is none."""
        sent = False
        for name, event_type in TRANSCRIPTION_EVENTS.items():
            render = self._last.get(name)
            if hook.events.get(name) and render is not None:
                self._pool.submit(self._post, hook, event_type, render(hook), False)
                sent = True
        return sent

    def transcription_event(self, name: str, render: Callable[[WebHook], dict[str, Any]]) -> None:
        """Notify every active hook registered for ``name`` (e.g. ``transcriptionCompletion``).

        ``render`` builds the Transcription entity in the hook's API version.
        """

        def body(hook: WebHook) -> bytes:
            return json.dumps(render(hook)).encode()

        self._last[name] = body
        for hook in self._store.hooks():
            if hook.wants(name):
                self._pool.submit(self._post, hook, TRANSCRIPTION_EVENTS[name], body(hook))

    def reset(self) -> None:
        """Forget the last entities (admin reset)."""
        self._last.clear()
