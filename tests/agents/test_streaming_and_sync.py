"""run_stream and run_sync: the same turns as run, delivered differently."""

from __future__ import annotations

import asyncio
import json

import pytest

from threadline import (
    AgentRunResponseUpdate,
    ChatAgent,
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    ScriptedChatClient,
    UsageContent,
    UsageDetails,
    UsageError,
)


def lookup(key: str) -> str:
    """Look a key up."""
    return {"color": "blue"}.get(key, "unknown")


async def test_stream_yields_chunks_tool_calls_and_results_then_stores_the_turn() -> None:
    call = FunctionCallContent(call_id="c1", name="lookup", arguments=json.dumps({"key": "color"}))
    client = ScriptedChatClient([[call], "The color is blue."])
    agent = ChatAgent(client, name="helper", tools=[lookup])
    thread = agent.get_new_thread()
    updates: list[AgentRunResponseUpdate] = [
        u async for u in agent.run_stream("color?", thread=thread)
    ]

    kinds = [type(c).__name__ for u in updates for c in u.contents]
    assert kinds[:2] == ["FunctionCallContent", "FunctionResultContent"]
    assert "".join(u.text for u in updates) == "The color is blue."
    assert [u.text for u in updates[2:]] == ["The", " color", " is", " blue."]
    assert {u.author_name for u in updates if u.role == Role.ASSISTANT} == {"helper"}
    result = updates[1].contents[0]
    assert isinstance(result, FunctionResultContent) and result.result == "blue"

    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert stored[-1].text == "The color is blue." and stored[-1].author_name == "helper"
    # The folded message keeps the id the stream reported.
    assert stored[-1].message_id == updates[-1].message_id


async def test_stream_and_run_store_the_same_history() -> None:
    async def history(streaming: bool) -> list[tuple[str, str]]:
        agent = ChatAgent(ScriptedChatClient(["Hello there, Alice.", "Alice."]))
        thread = agent.get_new_thread()
        for text in ("My name is Alice", "What's my name?"):
            if streaming:
                async for _ in agent.run_stream(text, thread=thread):
                    pass
            else:
                await agent.run(text, thread=thread)
        assert thread.message_store is not None
        return [(m.role.value, m.text) for m in await thread.message_store.list_messages()]

    assert await history(True) == await history(False)


async def test_usage_is_summed_over_the_runs_model_calls() -> None:
    call = FunctionCallContent(call_id="c1", name="lookup", arguments='{"key": "x"}')
    first = ChatMessage(
        Role.ASSISTANT,
        contents=[call, UsageContent(UsageDetails(input_token_count=10, output_token_count=2))],
    )
    second = ChatMessage(
        Role.ASSISTANT,
        "done",
        contents=[UsageContent(UsageDetails(input_token_count=15, output_token_count=1))],
    )
    response = await ChatAgent(ScriptedChatClient([first, second]), tools=[lookup]).run("x")
    assert response.usage == UsageDetails(input_token_count=25, output_token_count=3)
    assert response.response_id == "resp_2"


def test_run_sync_runs_a_turn_from_plain_code() -> None:
    agent = ChatAgent(ScriptedChatClient(["sync answer"]), instructions="Be brief")
    response = agent.run_sync("hello")
    assert response.text == "sync answer" and str(response) == "sync answer"


async def test_run_sync_inside_an_event_loop_is_a_clear_error() -> None:
    agent = ChatAgent(ScriptedChatClient(["x"]))
    with pytest.raises(UsageError, match="running event loop; await agent.run"):
        agent.run_sync("hello")
    await asyncio.sleep(0)


async def test_inputs_may_be_text_messages_or_lists() -> None:
    client = ScriptedChatClient(["a", "b", "c"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    await agent.run(ChatMessage(Role.USER, "as message", author_name="bob"), thread=thread)
    await agent.run(["two", ChatMessage(Role.USER, "parts")], thread=thread)
    await agent.run(thread=thread)  # no new input: the model continues
    assert [m.text for m in client.calls[1].messages] == ["as message", "a", "two", "parts"]
    assert len(client.calls[2].messages) == 5
    with pytest.raises(TypeError, match="expected str or ChatMessage, got int"):
        await agent.run([1], thread=thread)  # pyright: ignore[reportArgumentType]


async def test_options_reach_the_client() -> None:
    client = ScriptedChatClient(["x"])
    agent = ChatAgent(client, default_options={"model": "m1", "temperature": 0.1})
    await agent.run("hi", temperature=0.7, max_tokens=5)
    options = client.calls[0].options
    assert (options.get("model"), options.get("temperature"), options.get("max_tokens")) == (
        "m1",
        0.7,
        5,
    )
