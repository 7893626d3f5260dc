"""Errors in the OpenAI error JSON shape, so the official client raises its usual exceptions.

Every failure a caller can cause is an :class:`ApiError` with a 4xx status; the app's handler turns
anything else into a 500 with a generic message, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from threadline.hosting._json import JSONResponse

__all__ = ["ApiError", "error_body", "error_response"]


class ApiError(Exception):
    """An error answered to the caller as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    @classmethod
    def not_found(cls, kind: str, object_id: str, *, param: str | None = None) -> ApiError:
        """404 for an object that does not exist or belongs to another API key."""
        return cls(404, f"No {kind} found with id '{object_id}'.", param=param, code="not_found")

    @classmethod
    def bad(cls, message: str, *, param: str | None = None) -> ApiError:
        """400 for a malformed request."""
        return cls(400, message, param=param, code="invalid_value")


def error_body(
    message: str,
    *,
    type: str,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error JSON."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(error: ApiError) -> JSONResponse:
    """An ``ApiError`` as an HTTP response."""
    # 409 (a conversation changed meanwhile: run again on the new history), 429 and 5xx are worth
    # retrying; other 4xx would fail the same way again.
    retry = error.status in (409, 429) or error.status >= 500
    headers = None if retry else {"x-should-retry": "false"}
    return JSONResponse(
        error_body(error.message, type=error.type, param=error.param, code=error.code),
        status_code=error.status,
        headers=headers,
    )
