"""``SpanBuffer``: the last traces a process made, kept in memory for the web UI's waterfall.

``threadline serve`` and ``threadline ui`` keep their own recent traces so a developer can see
where a turn spent its time without running a collector. The buffer is an OpenTelemetry SDK span
processor: it is added beside whatever exporters the ``OTEL_*`` variables configured, or, when
nothing is configured, it becomes the only processor of a provider of its own. It holds at most
``max_traces`` traces (the oldest go first) and indexes each by the threads its spans name
(``gen_ai.conversation.id`` and ``threadline.thread.id``), so the page of a thread finds its
turns' traces; a group chat is one trace, found from its transcript's thread and each
participant's.

Needs the SDK (the ``otel`` extra); without it :meth:`SpanBuffer.install` returns ``None`` and the
pages say that traces are not recorded.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

__all__ = ["SpanBuffer"]

_THREAD_KEYS = ("gen_ai.conversation.id", "threadline.thread.id")


class SpanBuffer:
    """The finished spans of the last ``max_traces`` traces, by trace and by thread."""

    def __init__(self, *, max_traces: int = 200) -> None:
        self.max_traces = max_traces
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, list[ReadableSpan]] = OrderedDict()

    @classmethod
    def install(cls, *, max_traces: int = 200) -> SpanBuffer | None:
        """A buffer receiving the spans of this process; ``None`` without the OpenTelemetry SDK.

        Added to the global SDK provider when one is set (``configure_tracing`` or the
        application's); otherwise a provider of its own is made global, so a plain
        ``threadline serve`` records its traces for the UI only and exports nothing. Nothing
        is installed under ``OTEL_SDK_DISABLED=true``.
        """
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None  # the operator turned OpenTelemetry off: record nothing, even here
        try:
            from opentelemetry.sdk.trace import TracerProvider
        except ImportError:
            return None
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            if not isinstance(provider, trace.ProxyTracerProvider):
                return None  # an application's own, non-SDK provider: leave it alone
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
            provider = trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):  # a provider was set just before us
                return None
        buffer = cls(max_traces=max_traces)
        provider.add_span_processor(buffer)  # pyright: ignore[reportArgumentType]
        return buffer

    # The SpanProcessor interface (duck-typed: the SDK is optional at import time).
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do until a span ends."""

    def _on_ending(self, span: Span) -> None:
        """Called by newer SDKs before ``on_end``; nothing to do."""

    def on_end(self, span: ReadableSpan) -> None:
        """Keep the finished span under its trace, dropping the oldest trace when full."""
        context = span.context
        if context is None:
            return
        key = format(context.trace_id, "032x")
        with self._lock:
            spans = self._traces.pop(key, None) or []
            spans.append(span)
            self._traces[key] = spans
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)

    def shutdown(self) -> None:
        """Forget every span."""
        with self._lock:
            self._traces.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Spans are kept as they end: nothing is pending."""
        return True

    def traces_of(self, thread_id: str) -> list[dict[str, Any]]:
        """The kept traces with a span naming ``thread_id``, newest first, drawn as waterfalls."""
        with self._lock:
            found = [
                list(spans)
                for spans in self._traces.values()
                if any(_names_thread(s, thread_id) for s in spans)
            ]
        return [_trace_json(spans) for spans in reversed(found)]


def _names_thread(span: ReadableSpan, thread_id: str) -> bool:
    attributes = span.attributes or {}
    return any(attributes.get(key) == thread_id for key in _THREAD_KEYS)


def _plain(value: object) -> object:
    """An attribute value as JSON: scalars as they are, sequences as lists, else text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in cast(Sequence[object], value)]
    return str(value)


def _trace_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """A trace as a waterfall: spans in start order, times in ms from the trace's first start."""
    spans = sorted(spans, key=lambda s: s.start_time or 0)
    start = min((s.start_time or 0) for s in spans)
    end = max((s.end_time or s.start_time or 0) for s in spans)
    rows: list[dict[str, Any]] = []
    for span in spans:
        context = span.context
        begun = span.start_time or start
        rows.append(
            {
                "name": span.name,
                "span_id": format(context.span_id, "016x") if context else "",
                "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
                "start_ms": (begun - start) / 1e6,
                "duration_ms": ((span.end_time or begun) - begun) / 1e6,
                "error": span.status.status_code.name == "ERROR",
                "attributes": {
                    key: _plain(value) for key, value in (span.attributes or {}).items()
                },
            }
        )
    first = spans[0].context
    return {
        "trace_id": format(first.trace_id, "032x") if first else "",
        "duration_ms": (end - start) / 1e6,
        "spans": rows,
    }
