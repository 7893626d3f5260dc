"""The official client against the server's stateless Chat Completions API."""

from __future__ import annotations

from tests.hosting.conftest import Server
from threadline import FunctionCallContent


async def test_completion_carries_the_history(server: Server) -> None:
    server.model.add_replies("Paris")
    async with server.client() as client:
        completion = await client.chat.completions.create(
            model="threadline",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of Italy?"},
                {"role": "assistant", "content": "Rome"},
                {"role": "user", "content": "And of France?"},
            ],
        )
    assert completion.choices[0].message.content == "Paris"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    seen = [m.text for m in server.model.calls[0].messages]
    assert seen == [
        "You are a test agent.",
        "Be brief.",
        "Capital of Italy?",
        "Rome",
        "And of France?",
    ]


async def test_streaming_with_usage(server: Server) -> None:
    server.model.add_replies("a b c")
    async with server.client() as client:
        stream = await client.chat.completions.create(
            model="threadline",
            messages=[{"role": "user", "content": "go"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = ""
        usage = None
        finish = None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
    assert text == "a b c" and finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


async def test_tool_calls_round_trip(server: Server) -> None:
    server.model.add_replies(
        [FunctionCallContent(call_id="call_9", name="add", arguments='{"a": 1, "b": 2}')], "3"
    )
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    async with server.client() as client:
        first = await client.chat.completions.create(
            model="threadline",
            messages=[{"role": "user", "content": "1+2"}],
            tools=tools,  # pyright: ignore[reportArgumentType]
        )
        message = first.choices[0].message
        assert first.choices[0].finish_reason == "tool_calls"
        assert message.tool_calls and message.tool_calls[0].function.name == "add"  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
        second = await client.chat.completions.create(
            model="threadline",
            messages=[
                {"role": "user", "content": "1+2"},
                message.model_dump(exclude_none=True),  # pyright: ignore[reportArgumentType]
                {"role": "tool", "tool_call_id": "call_9", "content": "3"},
            ],
            tools=tools,  # pyright: ignore[reportArgumentType]
        )
    assert second.choices[0].message.content == "3"
