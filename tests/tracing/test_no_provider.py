"""Without a configured tracer provider nothing is recorded, nothing fails, runs are unchanged."""

from __future__ import annotations

import json

from opentelemetry import trace

from tests._otel import reset_globals
from threadline import (
    ChatAgent,
    ConversationMemory,
    FunctionCallContent,
    GroupChat,
    InMemoryMemoryStore,
    ScriptedChatClient,
)
from threadline import _tracing as tr


async def test_no_provider_no_spans_and_no_errors() -> None:
    reset_globals()  # whatever an earlier test configured
    assert not tr.tracing_on()
    seen: list[bool] = []

    def probe(x: int) -> int:
        """Reports whether a span is recording while it runs."""
        seen.append(trace.get_current_span().is_recording())
        return x

    call = FunctionCallContent(call_id="c", name="probe", arguments=json.dumps({"x": 1}))
    agent = ChatAgent(ScriptedChatClient([[call], "done"]), name="a", tools=[probe])
    thread = agent.get_new_thread(user_id="u")
    assert (await agent.run("go", thread=thread)).text == "done"
    streamed = ChatAgent(ScriptedChatClient(["streamed answer"]), name="s")
    assert "".join([u.text async for u in streamed.run_stream("go")]) == "streamed answer"
    chat = GroupChat(
        [
            ChatAgent(ScriptedChatClient(["x"]), name="one"),
            ChatAgent(ScriptedChatClient(["y"]), name="two"),
        ],
        max_rounds=2,
    )
    assert (await chat.run("hi")).text == "x\ny"
    assert seen == [False]
    assert tr.start_span("anything") is None
    assert not trace.get_current_span().is_recording()


async def test_metrics_without_traces() -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests._otel import Telemetry

    reset_globals()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(provider)
    try:
        agent = ChatAgent(ScriptedChatClient(["a", "b"]), name="m")
        thread = agent.get_new_thread()
        await agent.run("one", thread=thread)
        await agent.run("two", thread=thread)
        assert not tr.tracing_on()
        seen = Telemetry(InMemorySpanExporter(), reader)
        points = seen.histogram("gen_ai.client.operation.duration")
        assert sum(p.count for p in points) == 2
        assert all(
            p.attributes and p.attributes["gen_ai.provider.name"] == "scripted" for p in points
        )
    finally:
        provider.shutdown()
        reset_globals()


async def test_an_unsampled_run_makes_no_other_span() -> None:
    """Regression: a tool of an unsampled run started a trace of its own (an orphan span).

    The sampler is parent-based, as OpenTelemetry's default: it decides for a run (a root) and
    its descendants follow. Memory, tools and a group chat's turns must all follow the run.
    """
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.util.types import Attributes

    class DropRuns(Sampler):
        """Drops the runs' spans, samples any other root."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: object = None,
        ) -> SamplingResult:
            if name.startswith(("invoke_agent", "group_chat")):
                return SamplingResult(Decision.DROP)
            return SamplingResult(Decision.RECORD_AND_SAMPLE)

        def get_description(self) -> str:
            return "DropRuns"

    reset_globals()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=DropRuns()))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        call = FunctionCallContent(call_id="c", name="probe", arguments=json.dumps({"x": 1}))

        def probe(x: int) -> int:
            """Returns x."""
            return x

        memory = ConversationMemory(InMemoryMemoryStore())
        agent = ChatAgent(
            ScriptedChatClient([[call], "done", "again"]),
            name="a",
            tools=[probe],
            context_providers=[memory],
        )
        thread = agent.get_new_thread(user_id="u")
        assert (await agent.run("go", thread=thread)).text == "done"
        assert (await agent.run("go on", thread=thread)).text == "again"  # recalls, ingests
        chat = GroupChat(
            [
                ChatAgent(ScriptedChatClient(["x"]), name="one"),
                ChatAgent(ScriptedChatClient(["y"]), name="two"),
            ],
            max_rounds=2,
        )
        assert (await chat.run("hi")).text == "x\ny"
        assert [s.name for s in exporter.get_finished_spans()] == []
    finally:
        provider.shutdown()
        reset_globals()
