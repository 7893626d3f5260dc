"""Server-sent events: framing, and the error event the official client turns into an exception."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from threadline.hosting._json import dumps
from threadline.hosting.errors import ApiError

__all__ = ["sse", "sse_response"]

log = logging.getLogger("threadline.hosting")


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One event: ``event:`` line (when named), ``data:`` line, blank line."""
    payload = data.encode() if isinstance(data, str) else dumps(data)
    head = b"event: " + event.encode() + b"\ndata: " if event else b"data: "
    return head + payload + b"\n\n"


def _error_event(exc: BaseException) -> bytes:
    if isinstance(exc, ApiError):
        error = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    else:
        log.exception("stream failed", exc_info=exc)
        error = {
            "message": "The server failed while streaming.",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    return sse({"type": "error", **error, "error": error}, "error")


async def _guard(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # A failure after the headers went out can only be told in-band: as an error event.
    try:
        async for chunk in events:
            yield chunk
    except Exception as exc:
        yield _error_event(exc)


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A streaming response of ready-framed events."""
    return StreamingResponse(
        _guard(events),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
