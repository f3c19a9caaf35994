"""Signed, expiring download URLs for result files: the emulator's analogue of a blob SAS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from speech_emulator.timefmt import iso_timestamp, parse_timestamp

CONTENT_PREFIX = "/_content"


class TokenError(Exception):
    """A download token that is missing, tampered with or expired."""


class ContentSigner:
    """Issues and checks ``se`` (expiry) + ``sig`` (HMAC-SHA256) query parameters."""

    def __init__(self, key: bytes | None = None) -> None:
        # A fresh key per process: URLs do not survive a restart, nor do the files.
        self._key = key or secrets.token_bytes(32)

    def _sign(self, resource: str, expiry: str) -> str:
        digest = hmac.new(self._key, f"{resource}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, base: str, job_id: str, file_id: str, name: str, expires: datetime) -> str:
        """The contentUrl of a file, valid until ``expires``."""
        resource = f"{job_id}/{file_id}"
        expiry = iso_timestamp(expires)
        query = urlencode({"se": expiry, "sp": "r", "sig": self._sign(resource, expiry)})
        return f"{base}{CONTENT_PREFIX}/{resource}/{quote(name)}?{query}"

    def check(
        self, job_id: str, file_id: str, expiry: str | None, sig: str | None, now: datetime
    ) -> None:
        """Raise TokenError unless ``sig`` signs this file and ``expiry`` is in the future."""
        if not expiry or not sig:
            raise TokenError("Server failed to authenticate the request: the signature is missing.")
        expected = self._sign(f"{job_id}/{file_id}", expiry).encode("ascii")
        # Bytes, not str: compare_digest raises TypeError for a non-ASCII str, and the query
        # string is the client's to fill (a 500 where a forged token deserves a 403).
        if not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
            raise TokenError(
                "Server failed to authenticate the request. Make sure the value of the "
                "signature is formed correctly."
            )
        try:
            expires = parse_timestamp(expiry)
        except ValueError as exc:
            raise TokenError("Signed expiry time is not a valid timestamp.") from exc
        if expires <= now:
            raise TokenError("Signed expiry time has passed: request a fresh contentUrl.")


def expiry(now: datetime, minutes: int) -> datetime:
    """When a token issued ``now`` for ``minutes`` expires."""
    return now + timedelta(minutes=minutes)
