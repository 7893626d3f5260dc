"""The GenAI spans of agent runs, read back from the OpenTelemetry SDK's in-memory exporter.

The model is ``ScriptedChatClient`` (threadline's deterministic model); everything else is real:
the SDK, the run loop, the thread stores.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from pathlib import Path

import pytest

from tests._otel import Telemetry, attributes
from threadline import (
    ChatAgent,
    ClientError,
    ErrorContent,
    FunctionCallContent,
    ScriptedChatClient,
    SQLiteChatMessageStore,
    TextContent,
    UsageContent,
    UsageDetails,
)
from threadline import _tracing as tr
from threadline.agents._turn import TURN_FAILED


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def broken(city: str) -> str:
    """A tool that fails."""
    raise ValueError(f"no station in {city}")


def call(name: str, call_id: str = "call_1", **arguments: object) -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def usage(inp: int, out: int) -> UsageContent:
    return UsageContent(UsageDetails(input_token_count=inp, output_token_count=out))


def tool_script() -> ScriptedChatClient:
    return ScriptedChatClient(
        [
            [call("get_weather", city="Paris"), usage(20, 5)],
            [TextContent("It is sunny in Paris."), usage(30, 7)],
        ]
    )


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_stream"])
async def test_tool_calling_run_span_tree(
    telemetry: Telemetry, tmp_path: Path, stream: bool
) -> None:
    agent = ChatAgent(
        tool_script(),
        "Be brief.",
        name="weather",
        id="agent_w",
        description="Answers about the weather",
        tools=[get_weather],
        chat_message_store_factory=lambda: SQLiteChatMessageStore(tmp_path / "t.db"),
    )
    thread = agent.get_new_thread(user_id="alice")
    if stream:
        text = "".join([u.text async for u in agent.run_stream("Weather in Paris?", thread=thread)])
    else:
        text = (await agent.run("Weather in Paris?", thread=thread)).text
    assert "sunny" in text

    root = telemetry.one("invoke_agent weather")
    assert root.parent is None
    assert attributes(root) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "scripted",
        "gen_ai.agent.name": "weather",
        "gen_ai.agent.id": "agent_w",
        "gen_ai.agent.description": "Answers about the weather",
        "gen_ai.conversation.id": thread.id,
        "user.id": "alice",
        "threadline.stream": stream,
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 12,
        "gen_ai.response.id": "resp_2",
    }
    assert [s.name for s in telemetry.children(root)] == [
        "read sqlite",
        "chat",
        "execute_tool get_weather",
        "chat",
        "append sqlite",
    ]
    read, first, tool_span, second, append = telemetry.children(root)
    assert attributes(read)["db.system.name"] == "sqlite"
    assert attributes(read)["threadline.store.message_count"] == 0
    assert attributes(append)["threadline.store.message_count"] == 4  # input, call, result, answer
    assert attributes(append)["threadline.store.version"] == 4
    assert attributes(append)["threadline.thread.id"] == thread.id
    assert attributes(first)["gen_ai.operation.name"] == "chat"
    assert attributes(first)["gen_ai.usage.input_tokens"] == 20
    assert attributes(first)["gen_ai.usage.output_tokens"] == 5
    assert attributes(first)["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attributes(second)["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes(second)["gen_ai.response.id"] == "resp_2"
    assert attributes(tool_span) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "The weather in a city.",
    }
    assert tool_span.status.status_code.name == "UNSET"
    # One trace, and nothing left open.
    assert {s.context.trace_id for s in telemetry.spans() if s.context} == {
        root.context.trace_id if root.context else 0
    }
    # Metrics of the conventions: one duration per model call, tokens by type.
    durations = telemetry.histogram("gen_ai.client.operation.duration")
    assert sum(p.count for p in durations) == 2
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in telemetry.histogram("gen_ai.client.token.usage")
        if p.attributes
    }
    assert tokens == {"input": 50, "output": 12}


async def test_a_failing_tool_has_an_error_status_and_the_run_goes_on(
    telemetry: Telemetry,
) -> None:
    client = ScriptedChatClient([[call("broken", city="Oslo")], "Sorry, no data."])
    agent = ChatAgent(client, name="w", tools=[broken])
    response = await agent.run("Weather in Oslo?")
    assert response.text == "Sorry, no data."
    span = telemetry.one("execute_tool broken")
    assert span.status.status_code.name == "ERROR"
    assert "no station in Oslo" in (span.status.description or "")
    assert attributes(span)["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]
    assert telemetry.one("invoke_agent w").status.status_code.name == "UNSET"


async def test_an_unknown_tool_is_an_error_of_its_span(telemetry: Telemetry) -> None:
    client = ScriptedChatClient([[call("nope")], "ok"])
    await ChatAgent(client, name="w", tools=[get_weather]).run("hi")
    span = telemetry.one("execute_tool nope")
    assert span.status.status_code.name == "ERROR"
    assert attributes(span)["error.type"] == "unknown_tool"


async def test_a_failed_model_call_fails_its_spans_and_stores_the_input(
    telemetry: Telemetry,
) -> None:
    agent = ChatAgent(ScriptedChatClient([ClientError("the model is down")]), name="w")
    thread = agent.get_new_thread()
    with pytest.raises(ClientError):
        await agent.run("hello", thread=thread)
    chat = telemetry.one("chat")
    run = telemetry.one("invoke_agent w")
    for span in (chat, run):
        assert span.status.status_code.name == "ERROR"
        assert attributes(span)["error.type"] == "ClientError"
    append = telemetry.one("append memory")
    assert append.parent is not None and run.context is not None
    assert append.parent.span_id == run.context.span_id
    assert thread.message_store is not None
    mark = (await thread.message_store.list_messages())[0].contents[-1]
    assert isinstance(mark, ErrorContent) and mark.error_code == TURN_FAILED
    errors = [p for p in telemetry.histogram("gen_ai.client.operation.duration") if p.attributes]
    assert [p.attributes["error.type"] for p in errors if p.attributes] == ["ClientError"]


async def test_an_abandoned_stream_ends_its_spans(telemetry: Telemetry) -> None:
    agent = ChatAgent(ScriptedChatClient(["one two three four"]), name="w")
    async with aclosing(agent.run_stream("count")) as updates:
        async for _ in updates:
            break
    run = telemetry.one("invoke_agent w")
    assert run.status.status_code.name == "ERROR"
    assert attributes(run)["error.type"] == "GeneratorExit"
    assert telemetry.one("chat").end_time is not None


async def test_contents_are_not_recorded_by_default(telemetry: Telemetry) -> None:
    agent = ChatAgent(tool_script(), "Secret instructions", name="w", tools=[get_weather])
    await agent.run("my secret question")
    recorded = json.dumps([dict(s.attributes or {}) for s in telemetry.spans()])
    assert "secret" not in recorded
    assert "Paris" not in recorded
    assert "gen_ai.input.messages" not in recorded


@pytest.mark.parametrize("how", ["switch", "env"])
async def test_contents_are_recorded_when_asked(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "switch":
        tr.set_capture_content(True)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    agent = ChatAgent(tool_script(), "Be brief.", name="w", tools=[get_weather])
    await agent.run("Weather in Paris?")
    first, second = telemetry.named("chat")
    sent = json.loads(str(attributes(first)["gen_ai.input.messages"]))
    assert sent == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    ]
    answer = json.loads(str(attributes(first)["gen_ai.output.messages"]))
    assert answer[0]["parts"][0] == {
        "type": "tool_call",
        "id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    results = json.loads(str(attributes(second)["gen_ai.input.messages"]))[-1]
    assert results == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny in Paris"}],
    }
    tool_span = telemetry.one("execute_tool get_weather")
    assert attributes(tool_span)["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert attributes(tool_span)["gen_ai.tool.call.result"] == '"sunny in Paris"'


async def test_a_tools_own_spans_nest_under_its_call(telemetry: Telemetry) -> None:
    from opentelemetry import trace

    def traced(city: str) -> str:
        """A tool that makes a span of its own."""
        with trace.get_tracer("app").start_as_current_span("lookup"):
            return city

    client = ScriptedChatClient([[call("traced", city="Rome")], "done"])
    await ChatAgent(client, name="w", tools=[traced]).run("go")
    lookup = telemetry.one("lookup")
    tool_span = telemetry.one("execute_tool traced")
    assert lookup.parent is not None and tool_span.context is not None
    assert lookup.parent.span_id == tool_span.context.span_id


async def test_add_chat_message_is_an_append_span(telemetry: Telemetry) -> None:
    agent = ChatAgent(ScriptedChatClient([]), name="w")
    await agent.add_chat_message(["a", "b"])
    span = telemetry.one("append memory")
    assert attributes(span)["threadline.store.message_count"] == 2
    assert attributes(span)["threadline.store.version"] == 2
