"""``configure_tracing()``: install the OpenTelemetry SDK from the standard ``OTEL_*`` variables.

The library itself only ever uses the OpenTelemetry API (see :mod:`threadline._tracing`), so an
application that sets up OpenTelemetry its own way needs none of this. It exists for programs
that have no set-up of their own, ``threadline serve`` and ``threadline chat`` first: one call
makes them honour the variables every OpenTelemetry SDK reads:

* ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma-separated exporter names (``otlp``,
  ``console``, ``none``, or any exporter package's entry point name); tracing is configured only
  when one of them, or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``, is set, so a plain run never tries to
  reach a collector nobody started.
* ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, headers, timeouts: read by the
  OTLP exporter itself. ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``
  and ``OTEL_BSP_*`` are read by the SDK. ``OTEL_SDK_DISABLED=true`` turns it all off.

The SDK and OTLP exporter come with the ``otel`` extra (``pip install 'threadline[otel]'``).
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

from opentelemetry import metrics, trace

from threadline import _tracing
from threadline.exceptions import UsageError

__all__ = ["configure_tracing"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_OTLP = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc",
}


def _names(variable: str, *, default: str) -> list[str]:
    raw = os.environ.get(variable, default)
    return [n.strip().lower() for n in raw.split(",") if n.strip() and n.strip() != "none"]


def _exporter(kind: str, name: str) -> Any:
    """A new exporter named ``name`` (``kind``: ``traces`` or ``metrics``).

    ``Any``: exporters are SDK objects, and the SDK is an optional dependency.
    """
    if name == "otlp":
        protocol = os.environ.get(
            f"OTEL_EXPORTER_OTLP_{kind.upper()}_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        package = _OTLP.get(protocol)
        if package is None:
            raise UsageError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}; use 'http/protobuf' or 'grpc'"
            )
        module_name = f"{package}.{'trace' if kind == 'traces' else 'metric'}_exporter"
        class_name = "OTLPSpanExporter" if kind == "traces" else "OTLPMetricExporter"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            distribution = package.replace(".", "-")
            raise UsageError(
                f"OTEL_{kind.upper()}_EXPORTER asks for OTLP over {protocol}, but {module_name} "
                f"is not installed; pip install 'threadline[otel]' (or {distribution})"
            ) from exc
        return getattr(module, class_name)()
    group = f"opentelemetry_{kind}_exporter"
    found = importlib.metadata.entry_points(group=group, name=name)
    for entry in found:
        return entry.load()()
    known = sorted({e.name for e in importlib.metadata.entry_points(group=group)})
    raise UsageError(
        f"OTEL_{kind.upper()}_EXPORTER names {name!r}, which no installed package provides; use "
        f"otlp (pip install 'threadline[otel]'), none, or one of: {', '.join(known) or 'none'}"
    )


def configure_tracing(
    *, service_name: str = "threadline", capture_content: bool | None = None
) -> bool:
    """Export traces (and metrics) as the ``OTEL_*`` environment variables say.

    Does nothing when the application already set a tracer provider (its set-up wins), when no
    exporter is asked for, or when ``OTEL_SDK_DISABLED=true``. ``capture_content`` records message
    contents on spans (``None``: as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says).

    Returns:
        True when this call installed a tracer provider.

    Raises:
        UsageError: an exporter was asked for that is not installed, or the SDK is missing
            (``pip install 'threadline[otel]'``).
    """
    if capture_content is not None:
        _tracing.set_capture_content(capture_content)
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    asked = "OTEL_TRACES_EXPORTER" in os.environ or any(os.environ.get(v) for v in _ENDPOINTS)
    if not asked or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise UsageError(
            "OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed; "
            "pip install 'threadline[otel]'"
        ) from exc
    # From OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ``service_name`` when they name none.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    exporters = [_exporter("traces", n) for n in _names("OTEL_TRACES_EXPORTER", default="otlp")]
    if not exporters:
        return False
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # Metrics only when asked by name: the conventions' histograms are optional extras.
    metric_names = _names("OTEL_METRICS_EXPORTER", default="none")
    if metric_names and not _tracing.metrics_on():
        readers = [PeriodicExportingMetricReader(_exporter("metrics", n)) for n in metric_names]
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    return True
