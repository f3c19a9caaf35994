"""Error answers in the Speech API's shape: ``{"code", "message", "innerError": {...}}``.

Top-level codes are the API's ``ErrorCode`` values (InvalidRequest, Unauthorized, NotFound,
TooManyRequests, ...); ``innerError.code`` carries a ``DetailedErrorCode`` (InvalidPayload,
InvalidChannels, InvalidTimeToLive, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answer: raise it anywhere in a handler, the app turns it into a response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        inner_message: str | None = None,
        headers: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.inner_message = inner_message
        self.headers = dict(headers or {})
        self.target = target

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            out["target"] = self.target
        if self.inner_code:
            out["innerError"] = {
                "code": self.inner_code,
                "message": self.inner_message or self.message,
            }
        return out

    def response(self) -> JSONResponse:
        """The HTTP response for this error."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(
    message: str, inner_code: str = "InvalidPayload", target: str | None = None
) -> ApiError:
    """A 400 for a request the service rejects (bad body, parameter or value)."""
    return ApiError(400, "InvalidRequest", message, inner_code=inner_code, target=target)


def not_found(what: str) -> ApiError:
    """A 404 for an entity that does not exist (any more)."""
    return ApiError(404, "NotFound", f"The {what} does not exist or has been deleted.")
