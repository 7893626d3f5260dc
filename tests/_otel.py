"""The OpenTelemetry SDK with in-memory exporters, installed as the global providers for one test.

The SDK's own ``InMemorySpanExporter`` and ``InMemoryMetricReader`` receive what threadline
records; nothing is faked. OpenTelemetry lets a process set its global providers once, so the
fixture resets the API's "set once" guards around each test (as the SDK's own test utilities do):
that is the only private part, and it is test plumbing, not threadline's behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from threadline import _tracing


def reset_globals() -> None:
    """Forget the global tracer and meter providers (OpenTelemetry's own tests do the same)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


@dataclass
class Telemetry:
    """What the SDK received during one test."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """Finished spans called ``name``, in the order they started."""
        found = [s for s in self.spans() if s.name == name]
        return sorted(found, key=lambda s: s.start_time or 0)

    def one(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``."""
        found = self.named(name)
        names = [s.name for s in self.spans()]
        assert len(found) == 1, f"expected one span {name!r}, got {len(found)} among {names}"
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The spans whose parent is ``parent``, in the order they started."""
        assert parent.context is not None
        found = [
            s
            for s in self.spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]
        return sorted(found, key=lambda s: s.start_time or 0)

    def histogram(self, name: str) -> list[HistogramDataPoint]:
        """The data points of the histogram ``name``."""
        data = self.reader.get_metrics_data()
        points: list[HistogramDataPoint] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(
                            p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)
                        )
        return points


def attributes(span: ReadableSpan) -> Mapping[str, object]:
    """A span's attributes (never ``None``)."""
    return dict(span.attributes or {})


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Global SDK providers exporting to memory for this test; content capture left at default."""
    reset_globals()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    try:
        yield Telemetry(exporter, reader)
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
        reset_globals()
        _tracing.set_capture_content(None)
