"""Server-sent events: framing, and the error event the official client turns into an exception."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from threadline.exceptions import ClientError
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
    elif isinstance(exc, ClientError):
        # The hosted agent's model failed: say so with its message, as a non-streamed request's
        # 502 does (the message is ours, not a stack trace).
        log.warning("model failed while streaming: %s", exc)
        error = {
            "message": f"The model failed: {exc}",
            "type": "server_error",
            "param": None,
            "code": "model_error",
        }
    else:
        log.exception("stream failed", exc_info=exc)
        error = {
            "message": "The server failed while streaming.",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    # The event's own type is "error" (as OpenAI sends it); the error's kind is in "error".
    return sse({**error, "type": "error", "error": error}, "error")


async def _guard(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # A failure after the headers went out can only be told in-band: as an error event.
    try:
        async for chunk in events:
            yield chunk
    except Exception as exc:
        yield _error_event(exc)


class SSEResponse(Response):
    """A streaming ASGI response that writes whatever events are ready in one send.

    Events made back to back (a fast model, or the bookkeeping events around each delta) leave in
    one socket write; events that arrive apart still leave as soon as each is made, so coalescing
    never delays a token. A watcher stops the producer when the client disconnects, so an
    abandoned stream does not keep the model running.
    """

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        # Response's own __init__ renders a body; this response has none up front.
        self._events = events
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the stream."""
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        buffer: list[bytes] = []
        ready = asyncio.Event()
        done = False

        async def produce() -> None:
            nonlocal done
            try:
                async for chunk in _guard(self._events):
                    buffer.append(chunk)
                    ready.set()
            finally:
                done = True
                ready.set()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not done:
                producer.cancel()

        producer = asyncio.create_task(produce())
        watcher = asyncio.create_task(watch())
        try:
            while True:
                await ready.wait()
                ready.clear()
                finished = done
                body = b"".join(buffer)
                buffer.clear()
                if finished:
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    break
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def sse_response(events: AsyncIterator[bytes]) -> SSEResponse:
    """A streaming response of ready-framed events."""
    return SSEResponse(events)
