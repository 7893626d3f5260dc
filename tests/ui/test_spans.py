"""``SpanBuffer``: the last traces of a process, found by thread, bounded, beside others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests._otel import reset_globals
from threadline import ChatAgent, ScriptedChatClient
from threadline.ui import SpanBuffer


@pytest.fixture(autouse=True)
def _fresh_globals() -> Iterator[None]:
    reset_globals()
    yield
    reset_globals()


async def test_a_threads_turns_are_found_newest_first_and_old_traces_go() -> None:
    buffer = SpanBuffer.install(max_traces=3)
    assert buffer is not None
    agent = ChatAgent(ScriptedChatClient([f"answer {i}" for i in range(5)]), name="helper")
    mine, other = agent.get_new_thread(), agent.get_new_thread()
    await agent.run("one", thread=mine)
    await agent.run("two", thread=other)
    await agent.run("three", thread=mine)
    found = buffer.traces_of(mine.id)
    assert len(found) == 2
    assert found[0]["trace_id"] != found[1]["trace_id"]
    for shown in found:
        names = [s["name"] for s in shown["spans"]]
        assert names[0] == "invoke_agent helper"  # started first: the root, drawn on top
        assert {"chat", "read memory", "append memory"} <= set(names)
        root = shown["spans"][0]
        assert root["parent_id"] is None and root["start_ms"] == 0
        assert all(
            s["start_ms"] + s["duration_ms"] <= shown["duration_ms"] + 1e-6 for s in shown["spans"]
        )
        assert root["attributes"]["gen_ai.conversation.id"] == mine.id
    # Two more traces: only the last three are kept, so the first of ``mine`` is gone.
    await agent.run("four", thread=other)
    await agent.run("five", thread=other)
    assert len(buffer.traces_of(mine.id)) == 1
    assert buffer.traces_of("thread_unknown") == []


async def test_added_beside_the_applications_own_exporter() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    buffer = SpanBuffer.install()
    assert buffer is not None
    agent = ChatAgent(ScriptedChatClient(["hi"]))
    thread = agent.get_new_thread()
    await agent.run("hello", thread=thread)
    assert len(buffer.traces_of(thread.id)) == 1
    assert exporter.get_finished_spans()  # the application's exporter still gets every span
    assert trace.get_tracer_provider() is provider


def test_a_non_sdk_provider_is_left_alone() -> None:
    class Theirs(trace.NoOpTracerProvider):
        pass

    trace.set_tracer_provider(Theirs())
    assert SpanBuffer.install() is None


def test_nothing_is_recorded_when_opentelemetry_is_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert SpanBuffer.install() is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
