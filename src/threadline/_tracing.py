"""OpenTelemetry for threadline: tracer and meter access, attribute names, the content switch.

Every span and metric threadline records goes through this module, so the rules live in one
place:

* Spans go to the *global* tracer provider, whatever the application configured (threadline's
  own :func:`threadline.configure_tracing` is only a convenience for the CLI and server). Only
  ``opentelemetry-api`` is imported here; the SDK is the application's choice.
* Without a configured provider nothing is recorded and almost nothing is paid: a run asks
  :func:`observing` once (a look at the API's globals) and then takes the same path as without
  tracing; spans and their attributes are only built for a run that has a tracer. A run the
  sampler dropped keeps its (non-recording) span as its descendants' parent, so a parent-based
  sampler drops them too.
* Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``); threadline's own
  attributes are under ``threadline.*``.
* Message contents (prompts, answers, tool arguments and results, memory texts) are recorded only
  when asked: :func:`set_capture_content` or the conventions' environment variable
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, as the conventions recommend.

Async generators (streamed runs) never keep a span *current* across a ``yield``: a generator can
be closed from another task, where the context it attached cannot be detached. They activate a
span only around one step (:func:`activated`, :func:`iterate_in`).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import ProxyTracerProvider, Span, SpanKind, Status, StatusCode

__all__ = [
    "Span",
    "SpanKind",
    "Status",
    "StatusCode",
    "activated",
    "capture_content",
    "content_json",
    "end_error",
    "flush",
    "iterate_in",
    "mark_failed",
    "metrics_on",
    "observing",
    "record_model_call",
    "set_capture_content",
    "set_if",
    "start_span",
    "strings",
    "tracing_on",
]

# -- attribute names (GenAI semantic conventions, then threadline's own) --------------------------
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
USER_ID: Final = "user.id"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_ID: Final = "gen_ai.response.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_RESULT: Final = "gen_ai.tool.call.result"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"
DB_SYSTEM: Final = "db.system.name"
DB_OPERATION: Final = "db.operation.name"
THREAD_ID: Final = "threadline.thread.id"
MESSAGE_COUNT: Final = "threadline.store.message_count"
STORE_VERSION: Final = "threadline.store.version"
MEMORY_HITS: Final = "threadline.memory.hits"
MEMORY_KINDS: Final = "threadline.memory.kinds"
MEMORY_SCORES: Final = "threadline.memory.scores"
MEMORY_QUERY: Final = "threadline.memory.query"
MEMORY_TEXTS: Final = "threadline.memory.texts"
MEMORY_RECORDS: Final = "threadline.memory.records"
PROVIDER_KEY: Final = "threadline.context_provider"
RUNNER_KIND: Final = "threadline.multiagent.kind"
SPEAKER: Final = "threadline.multiagent.speaker"
SELECTED_BY: Final = "threadline.multiagent.selected_by"
STOP_REASON: Final = "threadline.multiagent.stop_reason"
HANDOFF_FROM: Final = "threadline.handoff.from"
HANDOFF_TO: Final = "threadline.handoff.to"

CAPTURE_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The conventions' switch for recording message contents (``true`` to record)."""

T = TypeVar("T")

_tracers: tuple[object, trace.Tracer] | None = None
"""The global provider last seen and threadline's tracer from it (asked for again on a change)."""

_meter = metrics.get_meter("threadline")
_token_usage = _meter.create_histogram(
    "gen_ai.client.token.usage",
    unit="{token}",
    description="Number of input and output tokens used",
    explicit_bucket_boundaries_advisory=[4**i for i in range(14)],
)
_duration = _meter.create_histogram(
    "gen_ai.client.operation.duration",
    unit="s",
    description="GenAI operation duration",
    explicit_bucket_boundaries_advisory=[0.01 * 2**i for i in range(14)],
)

_capture: bool | None = None


# The API's public getters cost about a microsecond each (they look up an environment variable
# on every call); a turn would pay several. Where the API keeps its globals as usual, read them
# directly: ``None`` there means no provider was set, the case that must cost nothing. A provider
# named by OTEL_PYTHON_TRACER_PROVIDER / OTEL_PYTHON_METER_PROVIDER is only loaded by the getters,
# so then (and on an API without these globals) the getters are used.
_FAST_TRACE = hasattr(trace, "_TRACER_PROVIDER") and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
_metrics_globals: Any = getattr(metrics, "_internal", None)  # Any: the API's private module
_FAST_METRICS = (
    hasattr(_metrics_globals, "_METER_PROVIDER") and "OTEL_PYTHON_METER_PROVIDER" not in os.environ
)


def _tracer() -> trace.Tracer | None:
    """Threadline's tracer from the global provider, or ``None`` while none is configured."""
    global _tracers
    if _FAST_TRACE and trace._TRACER_PROVIDER is None:
        return None
    provider = trace.get_tracer_provider()
    cached = _tracers
    if cached is not None and cached[0] is provider:
        return cached[1]
    # With no provider set, the API hands out its proxy (or a no-op provider): nothing to record.
    if isinstance(provider, ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    tracer = provider.get_tracer("threadline", _version())
    _tracers = (provider, tracer)
    return tracer


def _version() -> str | None:
    try:
        return importlib.metadata.version("threadline")
    except importlib.metadata.PackageNotFoundError:
        return None


def metrics_on() -> bool:
    """Whether a meter provider is configured (the API's stand-in records nothing)."""
    if _FAST_METRICS and _metrics_globals._METER_PROVIDER is None:
        return False
    provider = metrics.get_meter_provider()
    return not isinstance(provider, metrics.NoOpMeterProvider) and (
        type(provider).__name__ != "_ProxyMeterProvider"  # the API's stand-in until one is set
    )


def observing() -> bool:
    """Whether a tracer or a meter provider may be configured: one check for the common "no"."""
    if _FAST_TRACE and _FAST_METRICS:
        return trace._TRACER_PROVIDER is not None or _metrics_globals._METER_PROVIDER is not None
    return tracing_on() or metrics_on()


def tracing_on() -> bool:
    """Whether a tracer provider is configured (spans would be recorded, subject to sampling)."""
    if _FAST_TRACE and trace._TRACER_PROVIDER is None:
        return False
    return _tracer() is not None


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Span | None = None,
    context: otel_context.Context | None = None,
    attributes: Callable[[], Mapping[str, object]] | None = None,
    keep_unsampled: bool = False,
) -> Span | None:
    """A started span under ``parent`` (else ``context``, else the current span), or ``None``.

    ``None`` is the cheap path: no provider configured, or the sampler dropped the span. Callers
    set further attributes and end the span only when they got one. With ``keep_unsampled`` a
    span the sampler dropped is returned all the same (it records nothing): a run's span, made
    current or named as parent, so that its descendants are dropped with it by a parent-based
    sampler rather than start traces of their own. ``attributes`` is called
    only when there is a tracer; its ``None`` values are left out. Given at the start, they are
    also what a sampler sees, and cost one pass instead of one call each.
    """
    tracer = _tracer()
    if tracer is None:
        return None
    ctx = trace.set_span_in_context(parent) if parent is not None else context
    given = None
    if attributes is not None:
        given = {k: v for k, v in attributes().items() if v is not None}
    span = tracer.start_span(name, context=ctx, kind=kind, attributes=given)  # pyright: ignore[reportArgumentType]
    if not span.is_recording() and not keep_unsampled:
        return None
    return span


def end_error(span: Span | None, exc: BaseException) -> None:
    """End ``span`` as failed by ``exc`` (``error.type`` set, the exception recorded)."""
    if span is None:
        return
    mark_failed(span, exc)
    span.end()


def mark_failed(span: Span | None, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc`` without ending it (for a failure its owner handles)."""
    if span is not None:
        span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
        span.record_exception(exc)


class _Activation:
    """The block of :func:`activated` for a span: attach its context, detach it after."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object | None = None

    def __enter__(self) -> None:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # pyright: ignore[reportArgumentType]
            self._token = None


class _NoActivation:
    """The block of :func:`activated` without a span: nothing to do, one shared instance."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_ACTIVATION: Final = _NoActivation()


def activated(span: Span | None) -> _Activation | _NoActivation:
    """Make ``span`` the current span for a ``with`` block; does nothing for ``None``.

    Spans started inside the block (a store append, a tool's own spans, an HTTP client's) become
    its children. Never hold it across a ``yield`` (see the module docstring). Without a span
    (no provider) the block costs a call and a shared no-op, about a third of making one.
    """
    return _NO_ACTIVATION if span is None else _Activation(span)


async def iterate_in(span: Span | None, items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """``items``, each step taken with ``span`` current, never across the ``yield`` to the reader.

    For a generator whose spans should nest under ``span`` (a speaker's streamed run under its
    group-chat turn) while the reader's own code does not. Closing this generator closes
    ``items`` at once.
    """
    try:
        while True:
            with activated(span):
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
            yield item
    finally:
        # Closed now, as the reader closes this one: a stream's cleanup must not wait for GC.
        close = getattr(items, "aclose", None)
        if close is not None:
            with activated(span):
                await close()


def flush(timeout: float) -> None:
    """Export what the global providers still hold (an SDK's batch), waiting up to ``timeout`` s."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush(int(timeout * 1000))


def set_capture_content(enabled: bool | None) -> None:
    """Record message contents on spans (``True``), never (``False``), or as the env var says."""
    global _capture
    _capture = enabled


def capture_content() -> bool:
    """Whether spans carry message contents: the switch, else the conventions' env variable."""
    if _capture is not None:
        return _capture
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("true", "1", "yes")


def content_json(value: object) -> str:
    """A content attribute's value: JSON text (the conventions' form for structured contents)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def set_if(span: Span, attributes: Mapping[str, object]) -> None:
    """Set the attributes whose value is not ``None`` (OpenTelemetry refuses ``None``)."""
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)  # pyright: ignore[reportArgumentType]


def record_model_call(
    *,
    started: float,
    provider: Callable[[], str],
    model: Callable[[], str | None],
    input_tokens: int | None,
    output_tokens: int | None,
    error: BaseException | None = None,
) -> None:
    """Record the conventions' client metrics of one model call (when a meter is configured).

    ``provider`` and ``model`` are asked for only then.
    """
    if not metrics_on():
        return
    attributes: dict[str, str] = {OPERATION: "chat", PROVIDER: provider()}
    chosen = model()
    if chosen is not None:
        attributes[REQUEST_MODEL] = chosen
    if error is not None:
        attributes[ERROR_TYPE] = type(error).__qualname__
    _duration.record(time.perf_counter() - started, attributes)
    for token_type, count in (("input", input_tokens), ("output", output_tokens)):
        if count is not None:
            _token_usage.record(count, {**attributes, TOKEN_TYPE: token_type})


def strings(values: Iterable[object]) -> Sequence[str]:
    """An attribute value of strings (OpenTelemetry wants homogeneous sequences)."""
    return [str(v) for v in values]
