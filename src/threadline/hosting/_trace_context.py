"""W3C trace context for the server: each request's span continues the caller's ``traceparent``.

A client that sends ``traceparent`` (and ``tracestate``) headers, as any OpenTelemetry-instrumented
HTTP client does, sees the server's work (the agent's run, its model and tool calls, the thread
store) as children of its own span, in one trace. The headers are read with the globally
configured propagator (W3C trace context and baggage by default). Without a tracer provider the
middleware only passes the request on. At shutdown it exports the spans still queued.
"""

from __future__ import annotations

import asyncio

from opentelemetry import propagate
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline import _tracing as tr

__all__ = ["TraceContext"]


def _flushing_at_shutdown(send: Send) -> Send:
    """``send`` that exports the spans still queued before the server reports its shutdown.

    Batch exporters flush when the process exits normally, but uvicorn ends a server stopped by
    a signal by raising that signal again, which skips the exit handlers: without this, the
    last requests' spans would be lost.
    """

    async def flushing(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            await asyncio.to_thread(tr.flush, 5.0)
        await send(message)

    return flushing


class TraceContext:
    """ASGI middleware: one ``SERVER`` span per HTTP request, under the caller's trace if any."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _flushing_at_shutdown(send))
            return
        if scope["type"] != "http" or not tr.tracing_on():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        path: str = scope["path"]
        span = tr.start_span(
            f"{method} {path}",
            kind=tr.SpanKind.SERVER,
            context=propagate.extract(headers),
            keep_unsampled=True,  # current even when dropped: the request's spans go with it
        )
        if span is None:
            await self.app(scope, receive, send)
            return
        span.set_attribute("http.request.method", method)
        span.set_attribute("url.path", path)
        span.set_attribute("url.scheme", str(scope.get("scheme", "http")))

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(tr.Status(tr.StatusCode.ERROR))
                    span.set_attribute(tr.ERROR_TYPE, str(status))
            await send(message)

        try:
            with tr.activated(span):
                await self.app(scope, receive, traced_send)
        except BaseException as exc:
            tr.end_error(span, exc)
            raise
        span.end()
