"""The official ``openai`` client against the server's Responses and Conversations APIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import openai
import pytest

from tests.hosting.conftest import KEYS, Server, start_server
from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient
from threadline.hosting import ServerConfig


async def test_create_continue_and_delete(server: Server) -> None:
    server.model.add_replies("Hello Alice", "Your name is Alice")
    async with server.client() as client:
        first = await client.responses.create(model="threadline", input="My name is Alice")
        assert first.output_text == "Hello Alice"
        assert first.usage is not None and first.usage.total_tokens > 0
        second = await client.responses.create(
            model="threadline", input="What is my name?", previous_response_id=first.id
        )
        assert second.output_text == "Your name is Alice"
        assert second.previous_response_id == first.id
        # The model saw the whole history the server kept.
        seen = [m.text for m in server.model.calls[1].messages]
        assert seen == [
            "You are a test agent.",
            "My name is Alice",
            "Hello Alice",
            "What is my name?",
        ]
        fetched = await client.responses.retrieve(second.id)
        assert fetched.output_text == "Your name is Alice"
        items = await client.responses.input_items.list(second.id, order="asc")
        assert [i.type for i in items.data] == ["message", "message", "message"]
        await client.responses.delete(second.id)
        with pytest.raises(openai.NotFoundError, match="No response found"):
            await client.responses.retrieve(second.id)


async def test_branching_from_an_older_response(server: Server) -> None:
    server.model.add_replies("a1", "b1", "c1")
    async with server.client() as client:
        first = await client.responses.create(input="q1")
        await client.responses.create(input="q2", previous_response_id=first.id)
        await client.responses.create(input="q3", previous_response_id=first.id)
    assert [m.text for m in server.model.calls[2].messages[1:]] == ["q1", "a1", "q3"]


async def test_store_false_keeps_nothing(server: Server) -> None:
    server.model.add_replies("transient")
    async with server.client() as client:
        response = await client.responses.create(input="hi", store=False)
        assert response.output_text == "transient"
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)


async def test_instructions_are_added_to_the_agents(server: Server) -> None:
    server.model.add_replies("ok")
    async with server.client() as client:
        await client.responses.create(input="hi", instructions="Answer in French.")
    assert server.model.calls[0].messages[0].text == "You are a test agent.\n\nAnswer in French."


async def test_streaming_events(server: Server) -> None:
    server.model.add_replies("one two three", "four")
    async with server.client() as client:
        stream = await client.responses.create(input="count", stream=True)
        kinds: list[str] = []
        deltas: list[str] = []
        final_id = None
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            if event.type == "response.completed":
                final_id = event.response.id
                assert event.response.output_text == "one two three"
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.output_item.done" in kinds
        assert "".join(deltas) == "one two three" and len(deltas) == 3
        assert final_id is not None
        # A streamed response is stored and can be continued.
        nxt = await client.responses.create(input="more", previous_response_id=final_id)
        assert nxt.output_text == "four"
    assert [m.text for m in server.model.calls[1].messages[1:]] == [
        "count",
        "one two three",
        "more",
    ]


async def test_stream_helper_of_the_sdk(server: Server) -> None:
    server.model.add_replies("streamed via helper")
    async with server.client() as client:
        async with client.responses.stream(input="x", model="threadline") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
        assert final.output_text == "streamed via helper"


async def test_client_tools_are_returned_not_run(server: Server) -> None:
    call = FunctionCallContent(call_id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    server.model.add_replies([call], "It is sunny in Paris")
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    async with server.client() as client:
        first = await client.responses.create(input="Weather in Paris?", tools=tools)  # pyright: ignore[reportArgumentType]
        calls = [o for o in first.output if o.type == "function_call"]
        assert len(calls) == 1 and calls[0].name == "get_weather"
        assert json.loads(calls[0].arguments) == {"city": "Paris"}
        second = await client.responses.create(
            previous_response_id=first.id,
            input=[
                {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}
            ],
            tools=tools,  # pyright: ignore[reportArgumentType]
        )
        assert second.output_text == "It is sunny in Paris"
    assert server.model.calls[0].options.get("tools")
    sent = server.model.calls[1].messages
    assert [m.role for m in sent[1:]] == ["user", "assistant", "tool"]


async def test_conversation_items(server: Server) -> None:
    server.model.add_replies("noted", "you like tea")
    async with server.client() as client:
        conversation = await client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "I like tea"}]
        )
        first = await client.responses.create(input="remember that", conversation=conversation.id)
        assert first.output_text == "noted"
        await client.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": "and cake"}]
        )
        await client.responses.create(input="what do I like?", conversation=conversation.id)
        items = await client.conversations.items.list(conversation.id, order="asc")
        texts = [
            cast(Any, c).text
            for i in items.data
            if i.type == "message"
            for c in i.content
            if c.type in ("input_text", "output_text")
        ]
        assert texts == [
            "I like tea",
            "remember that",
            "noted",
            "and cake",
            "what do I like?",
            "you like tea",
        ]
        fetched = await client.conversations.retrieve(conversation.id)
        assert fetched.id == conversation.id
        deleted = await client.conversations.delete(conversation.id)
        assert deleted.deleted
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.list(conversation.id)


async def test_models(server: Server) -> None:
    async with server.client() as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["threadline"]


async def test_hosted_agent_tools_run_on_the_server(tmp_path: Path) -> None:
    looked_up: list[str] = []

    def lookup(q: str) -> str:
        """Look it up."""
        looked_up.append(q)
        return "42"

    model = ScriptedChatClient(
        [[FunctionCallContent(call_id="call_s", name="lookup", arguments='{"q": "x"}')], "It is 42"]
    )
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "t.db"))
    uv, task, url = await start_server(ChatAgent(model, tools=[lookup]), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            response = await client.responses.create(input="what is x?")
            # The caller sees the answer; the server-side tool call stays in the stored history.
            assert [o.type for o in response.output] == ["message"]
            assert response.output_text == "It is 42"
            items = await client.responses.input_items.list(response.id)
            assert [i.type for i in items.data] == ["message"]
        assert looked_up == ["x"]
    finally:
        uv.should_exit = True
        await task
