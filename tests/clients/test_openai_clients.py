"""threadline agents on the OpenAI clients against a threadline server, driven over real HTTP.

Reproduces the spec's table of threading support: Responses with ``store=True`` keeps a service id
only (and resumes from it in a new process); with ``store=False`` and Chat Completions the thread
keeps its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tests.hosting.conftest import KEYS, Server, start_server
from threadline import (
    ChatAgent,
    ChatMessage,
    ChatOptions,
    ChatResponse,
    ChatResponseUpdate,
    ClientError,
    FunctionCallContent,
    IncompatibleThreadError,
    ScriptedChatClient,
    TextContent,
)
from threadline.clients.openai_chat import OpenAIChatClient
from threadline.clients.openai_responses import OpenAIResponsesClient
from threadline.hosting import ServerConfig

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    model = ScriptedChatClient([])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    uv, task, url = await start_server(ChatAgent(model, "Server agent."), config)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task


def _texts(server: Server, call: int) -> list[str]:
    return [m.text for m in server.model.calls[call].messages]


async def test_responses_store_true_thread_is_a_service_id(server: Server) -> None:
    server.model.add_replies("Hi Alice", "You are Alice")
    client = OpenAIResponsesClient("threadline", base_url=server.url, api_key="key-alice")
    async with ChatAgent(client, "Be nice.") as agent:
        thread = agent.get_new_thread()
        await agent.run("I am Alice", thread=thread)
        state = await thread.serialize()
        assert state["service_thread_id"] is not None
        assert str(state["service_thread_id"]).startswith("resp_")
        assert "store_state" not in state and "messages" not in json.dumps(state)
        # Resume in a new process: only the id crosses over, the server has the history.
        script = textwrap.dedent(f"""
            import asyncio, json, sys
            from threadline import ChatAgent
            from threadline.clients.openai_responses import OpenAIResponsesClient

            async def main():
                client = OpenAIResponsesClient("threadline", base_url={server.url!r},
                                               api_key="key-alice")
                async with ChatAgent(client, "Be nice.") as agent:
                    thread = await agent.deserialize_thread(json.loads(sys.argv[1]))
                    reply = await agent.run("Who am I?", thread=thread)
                    print(reply.text)
                    print(json.dumps(await thread.serialize()))

            asyncio.run(main())
        """)
        # The server runs in this test's event loop, so the child must not block it: await it.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            json.dumps(state),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        reply, new_state = out.decode().strip().splitlines()
        assert reply == "You are Alice"
        assert json.loads(new_state)["service_thread_id"] != state["service_thread_id"]
    assert _texts(server, 1) == ["Server agent.\n\nBe nice.", "I am Alice", "Hi Alice", "Who am I?"]


async def test_responses_store_false_keeps_messages_locally(server: Server) -> None:
    server.model.add_replies("one", "two")
    client = OpenAIResponsesClient(
        "threadline", store=False, base_url=server.url, api_key="key-alice"
    )
    async with ChatAgent(client) as agent:
        thread = agent.get_new_thread()
        await agent.run("first", thread=thread)
        await agent.run("second", thread=thread)
        state = await thread.serialize()
        assert state.get("service_thread_id") is None
        assert "first" in json.dumps(state) and "one" in json.dumps(state)
        restored = await agent.deserialize_thread(state)
        assert restored.message_store is not None
        assert [m.text for m in await restored.message_store.list_messages()] == [
            "first",
            "one",
            "second",
            "two",
        ]
    assert _texts(server, 1) == ["Server agent.", "first", "one", "second"]


async def test_chat_completions_keeps_messages_locally(server: Server) -> None:
    server.model.add_replies("one", "two")
    client = OpenAIChatClient("threadline", base_url=server.url, api_key="key-alice")
    async with ChatAgent(client, "Be brief.") as agent:
        thread = agent.get_new_thread()
        await agent.run("first", thread=thread)
        response = await agent.run("second", thread=thread)
        assert response.text == "two"
        assert response.usage is not None and (response.usage.total_token_count or 0) > 0
        state = await thread.serialize()
        assert state.get("service_thread_id") is None and "first" in json.dumps(state)
    assert _texts(server, 1) == ["Server agent.", "Be brief.", "first", "one", "second"]


async def test_responses_thread_refused_by_chat_agent_before_any_request(server: Server) -> None:
    server.model.add_replies("stored")
    responses = OpenAIResponsesClient("threadline", base_url=server.url, api_key="key-alice")
    chat = OpenAIChatClient("threadline", base_url=server.url, api_key="key-alice")
    other = OpenAIResponsesClient("threadline", base_url="http://127.0.0.1:9/v1", api_key="k")
    async with (
        ChatAgent(responses) as agent,
        ChatAgent(chat) as chat_agent,
        ChatAgent(other) as elsewhere,
    ):
        thread = agent.get_new_thread()
        await agent.run("hello", thread=thread)
        state = await thread.serialize()
        with pytest.raises(IncompatibleThreadError):
            await chat_agent.run("next", thread=thread)
        with pytest.raises(IncompatibleThreadError):
            await chat_agent.deserialize_thread(state)
        with pytest.raises(IncompatibleThreadError):
            await elsewhere.deserialize_thread(state)
    assert len(server.model.calls) == 1


@pytest.mark.parametrize("use_conversations", [False, True])
async def test_responses_fork_branches(server: Server, use_conversations: bool) -> None:
    server.model.add_replies("a", "b", "c")
    client = OpenAIResponsesClient(
        "threadline", base_url=server.url, api_key="key-alice", use_conversations=use_conversations
    )
    async with ChatAgent(client) as agent:
        thread = agent.get_new_thread()
        await agent.run("root", thread=thread)
        if use_conversations:
            assert str(thread.service_thread_id).startswith("conv_")
        branch = await thread.fork()
        await agent.run("left", thread=thread)
        await agent.run("right", thread=branch)
    assert _texts(server, 1)[1:] == ["root", "a", "left"]
    assert _texts(server, 2)[1:] == ["root", "a", "right"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["responses", "responses-local", "chat"])
async def test_tool_calls_and_streaming(server: Server, kind: str, stream: bool) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Weather of a city."""
        calls.append(city)
        return f"sunny in {city}"

    server.model.add_replies(
        [FunctionCallContent(call_id="call_1", name="get_weather", arguments='{"city": "Oslo"}')],
        "It is sunny in Oslo today",
    )
    url, key = server.url, "key-alice"
    client = (
        OpenAIChatClient("threadline", base_url=url, api_key=key)
        if kind == "chat"
        else OpenAIResponsesClient(
            "threadline", store=kind == "responses", base_url=url, api_key=key
        )
    )
    async with ChatAgent(client, tools=[get_weather]) as agent:
        thread = agent.get_new_thread()
        if stream:
            text = "".join([u.text async for u in agent.run_stream("Weather?", thread=thread)])
        else:
            text = (await agent.run("Weather?", thread=thread)).text
    assert calls == ["Oslo"]
    assert text.endswith("It is sunny in Oslo today")
    second = server.model.calls[1].messages
    assert [m.role for m in second[1:]] == ["user", "assistant", "tool"]
    assert "sunny in Oslo" in json.dumps([m.to_dict() for m in second])


async def test_service_errors_are_client_errors(server: Server) -> None:
    bad = OpenAIResponsesClient("threadline", base_url=server.url, api_key="wrong", max_retries=0)
    async with ChatAgent(bad) as agent:
        with pytest.raises(ClientError, match="401.*Incorrect API key"):
            await agent.run("hi")
    gone = OpenAIResponsesClient("threadline", base_url=server.url, api_key="key-alice")
    async with ChatAgent(gone) as agent:
        thread = agent.get_new_thread(service_thread_id="resp_missing")
        with pytest.raises(ClientError, match="404"):
            await agent.run("hi", thread=thread)
    unreachable = OpenAIChatClient(
        "threadline", base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=1, timeout=2
    )
    async with ChatAgent(unreachable) as agent:
        with pytest.raises(ClientError, match="cannot reach"):
            await agent.run("hi")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("stream", [False, True])
async def test_assistants_resumes_a_service_thread(server: Server, stream: bool) -> None:
    from threadline.clients.openai_assistants import OpenAIAssistantsClient

    calls: list[str] = []

    def lookup(q: str) -> str:
        """Look something up."""
        calls.append(q)
        return "forty-two"

    server.model.add_replies(
        "Hi Carol",
        [FunctionCallContent(call_id="call_3", name="lookup", arguments='{"q": "answer"}')],
        "The answer is forty-two",
        "left branch",
        "right branch",
    )
    client = OpenAIAssistantsClient("threadline", base_url=server.url, api_key="key-alice")
    async with ChatAgent(client, "Be exact.", tools=[lookup]) as agent:
        thread = agent.get_new_thread()
        if stream:
            first = "".join([u.text async for u in agent.run_stream("I am Carol", thread=thread)])
        else:
            first = (await agent.run("I am Carol", thread=thread)).text
        assert first == "Hi Carol"
        state = await thread.serialize()
        assert str(state["service_thread_id"]).startswith("thread_")
        resumed = await agent.deserialize_thread(json.loads(json.dumps(state)))
        if stream:
            second = "".join([u.text async for u in agent.run_stream("What?", thread=resumed)])
        else:
            second = (await agent.run("What?", thread=resumed)).text
        assert second == "The answer is forty-two"
        assert calls == ["answer"]
        branch = await resumed.fork()
        assert branch.service_thread_id != resumed.service_thread_id
        await agent.run("go left", thread=resumed)
        await agent.run("go right", thread=branch)
    assert _texts(server, 0) == ["Server agent.\n\nBe exact.", "I am Carol"]
    assert [m.role for m in server.model.calls[2].messages[1:]] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
    left = _texts(server, 3)
    right = _texts(server, 4)
    assert left[-1] == "go left" and "go left" not in right and right[-1] == "go right"
    assert "The answer is forty-two" in right


async def test_server_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    # The hosted model fails once: the server answers 502, the SDK retries, the turn succeeds once.
    model = ScriptedChatClient([ClientError("flaky model"), "recovered"])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "s.db"))
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        client = OpenAIResponsesClient("threadline", base_url=url, api_key="key-alice")
        async with ChatAgent(client) as agent:
            thread = agent.get_new_thread()
            assert (await agent.run("hi", thread=thread)).text == "recovered"
        assert len(model.calls) == 2
        model.add_replies(ClientError("down for good"))
        failing = OpenAIResponsesClient(
            "threadline", base_url=url, api_key="key-alice", max_retries=0
        )
        async with ChatAgent(failing) as agent:
            with pytest.raises(ClientError, match="502.*down for good") as info:
                await agent.run("again", thread=thread)
            assert getattr(info.value, "status_code", None) == 502
    finally:
        uv.should_exit = True
        await task


class SlowStreamingModel:
    """Streams many words slowly and records how many it produced before being stopped."""

    service_name = "slow-stream"
    stores_history = False

    def __init__(self) -> None:
        self.produced = 0
        self.closed = asyncio.Event()

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        raise NotImplementedError

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        try:
            for i in range(200):
                self.produced += 1
                yield ChatResponseUpdate(contents=(TextContent(f"w{i} "),), message_id="msg_slow")
                await asyncio.sleep(0.01)
        finally:
            self.closed.set()


async def test_cancelling_a_stream_closes_it(tmp_path: Path) -> None:
    model = SlowStreamingModel()
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "s.db"))
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        client = OpenAIResponsesClient("threadline", base_url=url, api_key="key-alice")
        async with ChatAgent(client) as agent:
            async with contextlib.aclosing(agent.run_stream("talk")) as stream:
                async for update in stream:
                    assert update.text.startswith("w0")
                    break
            # The client closed the HTTP stream, so the server stopped the model long before 200.
            await asyncio.wait_for(model.closed.wait(), timeout=5)
        assert model.produced < 100
    finally:
        uv.should_exit = True
        await task
