"""The tool-calling loop: plain functions as tools, errors returned to the model, the bound."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import pytest
from pydantic import Field

from tests._helpers import store_of
from threadline import (
    AgentRunError,
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    ScriptedChatClient,
    UsageError,
    tool,
)


def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """Look up the current weather in a city.

    Args:
        city: the city's name, e.g. "Paris".
        unit: temperature unit.
    """
    return f"18 degrees {unit} and sunny in {city}"


def call(name: str, arguments: object, call_id: str = "call_1") -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def results_of(client: ScriptedChatClient, index: int) -> list[FunctionResultContent]:
    last = client.calls[index].messages[-1]
    assert last.role == Role.TOOL
    return [c for c in last.contents if isinstance(c, FunctionResultContent)]


async def test_function_schema_comes_from_hints_and_docstring() -> None:
    client = ScriptedChatClient(["ok"])
    agent = ChatAgent(client, tools=[get_weather])
    await agent.run("hi")
    (sent,) = client.calls[0].options.get("tools", [])
    assert sent.name == "get_weather"
    assert sent.description == "Look up the current weather in a city."
    assert sent.parameters["required"] == ["city"]
    props = sent.parameters["properties"]
    assert props["city"] == {"type": "string", "description": 'the city\'s name, e.g. "Paris".'}
    assert props["unit"]["enum"] == ["C", "F"]
    assert props["unit"]["default"] == "C"


async def test_tool_round_trip_until_the_model_answers() -> None:
    client = ScriptedChatClient([[call("get_weather", {"city": "Paris"})], "It is sunny in Paris."])
    agent = ChatAgent(client, tools=[get_weather])
    thread = agent.get_new_thread()
    response = await agent.run("Weather in Paris?", thread=thread)

    assert response.text == "It is sunny in Paris."
    (result,) = results_of(client, 1)
    assert result.call_id == "call_1"
    assert result.result == "18 degrees C and sunny in Paris"
    # The thread holds the whole exchange, in order.
    roles = [m.role for m in await store_of(thread).list_messages()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


async def test_async_tools_and_parallel_calls_keep_call_order() -> None:
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    client = ScriptedChatClient(
        [[call("add", {"a": 1, "b": 2}, "c1"), call("add", {"a": 3, "b": 4}, "c2")], "3 and 7"]
    )
    await ChatAgent(client, tools=[add]).run("sums")
    assert [(r.call_id, r.result) for r in results_of(client, 1)] == [("c1", 3), ("c2", 7)]


async def test_a_failing_tool_reports_its_error_to_the_model() -> None:
    def explode(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(f"boom: {reason}")

    client = ScriptedChatClient([[call("explode", {"reason": "test"})], "Sorry, that failed."])
    response = await ChatAgent(client, tools=[explode]).run("go")
    assert response.text == "Sorry, that failed."
    (result,) = results_of(client, 1)
    assert result.result is None
    assert result.exception == "tool 'explode' raised RuntimeError: boom: test"


@pytest.mark.parametrize(
    ("bad_call", "expected"),
    [
        (call("get_weather", {"town": "Paris"}), "city: Field required"),
        (call("get_weather", {"city": "Paris", "unit": "K"}), "unit: Input should be 'C' or 'F'"),
        (
            FunctionCallContent(call_id="call_1", name="get_weather", arguments="{not json"),
            "not valid JSON",
        ),
        (call("get_weather", ["Paris"]), "must be a JSON object"),
        (call("teleport", {}), "unknown tool 'teleport'; available tools: get_weather"),
    ],
)
async def test_bad_calls_become_error_results(bad_call: FunctionCallContent, expected: str) -> None:
    client = ScriptedChatClient([[bad_call], "ok"])
    await ChatAgent(client, tools=[get_weather]).run("go")
    (result,) = results_of(client, 1)
    assert result.exception is not None and expected in result.exception


async def test_the_loop_is_bounded_and_the_last_call_forbids_tools() -> None:
    looping = [[call("get_weather", {"city": "Paris"}, f"c{i}")] for i in range(3)]
    client = ScriptedChatClient([*looping, "Enough."])
    agent = ChatAgent(client, tools=[get_weather], max_tool_iterations=3)
    response = await agent.run("loop")
    assert response.text == "Enough."
    assert len(client.calls) == 4
    assert [c.options.get("tool_choice") for c in client.calls] == [None, None, None, "none"]
    assert "tools" not in client.calls[3].options


async def test_run_level_tools_add_to_the_agents_tools() -> None:
    @tool(name="shout", description="Upper-case a text.")
    def upper(text: str) -> str:
        return text.upper()

    client = ScriptedChatClient([[call("shout", {"text": "hi"})], "done"])
    await ChatAgent(client, tools=[get_weather]).run("x", tools=[upper])
    assert {t.name for t in client.calls[0].options.get("tools", [])} == {"get_weather", "shout"}
    assert results_of(client, 1)[0].result == "HI"


def test_duplicate_and_invalid_tools_are_refused() -> None:
    client = ScriptedChatClient([])
    with pytest.raises(UsageError, match="two tools are named 'get_weather'"):
        ChatAgent(client, tools=[get_weather, get_weather])
    with pytest.raises(UsageError, match="not usable"):
        ChatAgent(client, tools=[tool(get_weather, name="has space")])
    with pytest.raises(UsageError, match="must be a function"):
        ChatAgent(client, tools=[42])  # pyright: ignore[reportArgumentType]


def test_annotated_descriptions_and_complex_types() -> None:
    def search(
        query: Annotated[str, Field(description="what to look for")], limit: int = 5
    ) -> list[str]:
        """Search the notes."""
        return [query] * limit

    described = tool(search)
    assert described.parameters["properties"]["query"]["description"] == "what to look for"
    assert described.parameters["properties"]["limit"] == {"type": "integer", "default": 5}


async def test_a_model_that_calls_tools_on_its_last_call_fails_the_run_cleanly() -> None:
    looping = [[call("get_weather", {"city": "Paris"}, f"c{i}")] for i in range(2)]
    client = ScriptedChatClient(looping)
    agent = ChatAgent(client, tools=[get_weather], max_tool_iterations=1)
    thread = agent.get_new_thread()
    with pytest.raises(AgentRunError, match=r"still called 'get_weather'.*max_tool_iterations=1"):
        await agent.run("loop", thread=thread)
    # Only the input is stored: no unanswered call is left in the history.
    assert [m.text for m in await store_of(thread).list_messages()] == ["loop"]
    assert client.calls[1].options.get("tool_choice") == "none"
