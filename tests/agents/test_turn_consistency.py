"""What a turn stores: concurrent runs, failed model calls, abandoned streams.

Documented behaviour (see ChatAgent's module docstring and docs/threads.md):
* two runs on one AgentThread object: the second waits, then sees the first turn;
* separate thread objects over one store: a turn is one append, so the first to end wins and
  the other gets ConcurrentThreadUpdateError having stored nothing (it retries);
* a failed model call: the input is stored, marked unanswered, the error surfaces, nothing else;
* an abandoned stream: the input is stored, marked abandoned, nothing of the partial answer is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    ChatResponse,
    ChatResponseUpdate,
    ClientError,
    ConcurrentThreadUpdateError,
    ErrorContent,
    Role,
    ScriptedChatClient,
    TextContent,
)
from threadline.clients.base import ChatOptions
from threadline.threads.thread import AgentThread


class GatedClient:
    """A real ChatClient whose answers wait for the test to open a gate: deterministic races."""

    service_name = "gated"
    stores_history = False

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.started = asyncio.Event()
        self.seen: list[list[str]] = []

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        gate = asyncio.Event()
        self.gates.append(gate)
        number = len(self.gates)  # the n-th call answers "answer n", whenever its gate opens
        self.seen.append([m.text for m in messages])
        self.started.set()
        await gate.wait()
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, f"answer {number}"),))

    def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        raise NotImplementedError


async def texts(thread: AgentThread) -> list[str]:
    assert thread.message_store is not None
    return [m.text for m in await thread.message_store.list_messages()]


async def test_concurrent_runs_on_one_thread_wait_their_turn() -> None:
    client = ScriptedChatClient(["first answer", "second answer"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    first, second = await asyncio.gather(
        agent.run("first", thread=thread), agent.run("second", thread=thread)
    )
    assert (first.text, second.text) == ("first answer", "second answer")
    assert await texts(thread) == ["first", "first answer", "second", "second answer"]
    # The second turn's model call saw the whole first turn.
    assert [m.text for m in client.calls[1].messages] == ["first", "first answer", "second"]


async def test_second_writer_over_one_store_gets_a_conflict_not_an_interleave() -> None:
    client = GatedClient()
    agent = ChatAgent(client)
    original = agent.get_new_thread()
    state = await original.serialize()
    # Two thread objects over the same store, as two processes would hold.
    a = await agent.deserialize_thread(state)
    b = AgentThread(message_store=a.message_store)

    run_a = asyncio.create_task(agent.run("from a", thread=a))
    await client.started.wait()  # a read the thread and is waiting on the model
    client.started.clear()
    run_b = asyncio.create_task(agent.run("from b", thread=b))
    await client.started.wait()  # b read the same version and waits too
    assert await texts(a) == []  # a turn writes nothing before it ends
    client.gates[0].set()  # a's answer arrives first: a's whole turn is one append
    assert (await run_a).text == "answer 1"
    client.gates[1].set()  # b's answer arrives after a's turn landed
    with pytest.raises(ConcurrentThreadUpdateError, match="changed while this turn ran"):
        await run_b
    # Nothing of b is stored, not even its input: b still holds it and retries the turn.
    assert await texts(b) == ["from a", "answer 1"]
    client.started.clear()
    retry = asyncio.create_task(agent.run("from b", thread=b))
    await client.started.wait()
    assert client.seen[-1] == ["from a", "answer 1", "from b"]  # the retry saw a's turn
    client.gates[2].set()
    assert (await retry).text == "answer 3"
    assert await texts(b) == ["from a", "answer 1", "from b", "answer 3"]


async def test_a_failed_turn_keeps_its_input_marked_unanswered() -> None:
    client = ScriptedChatClient([ClientError("model unavailable"), "recovered"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    question = ChatMessage(Role.USER, "are you there?")
    with pytest.raises(ClientError):
        await agent.run(question, thread=thread)
    assert thread.message_store is not None
    (stored,) = await thread.message_store.list_messages()
    assert stored.message_id == question.message_id
    assert stored.text == "are you there?"
    (mark,) = [c for c in stored.contents if isinstance(c, ErrorContent)]
    assert mark.error_code == "turn_failed"
    assert "model unavailable" in mark.message
    # The model of the next turn is sent the question's text, not the mark.
    await agent.run("hello?", thread=thread)
    assert client.calls[1].messages[0].text == "are you there?"


async def test_an_abandoned_turn_is_marked_abandoned() -> None:
    client = ScriptedChatClient(["a long answer"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    stream = agent.run_stream(["first part", "second part"], thread=thread)
    await anext(stream)
    await stream.aclose()
    assert thread.message_store is not None
    first, second = await thread.message_store.list_messages()
    assert first.contents == (TextContent("first part"),)  # only the last message is marked
    marks = [c for c in second.contents if isinstance(c, ErrorContent)]
    assert [m.error_code for m in marks] == ["turn_abandoned"]


async def test_a_failed_model_call_keeps_the_input_and_surfaces_the_error() -> None:
    client = ScriptedChatClient([ClientError("model unavailable"), "recovered"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    with pytest.raises(ClientError, match="model unavailable"):
        await agent.run("are you there?", thread=thread)
    assert await texts(thread) == ["are you there?"]
    # The next turn works and the model sees the unanswered question.
    await agent.run("hello?", thread=thread)
    assert await texts(thread) == ["are you there?", "hello?", "recovered"]


async def test_a_failed_streaming_call_keeps_the_input() -> None:
    client = ScriptedChatClient([ClientError("stream broke")])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    with pytest.raises(ClientError, match="stream broke"):
        async for _ in agent.run_stream("hi", thread=thread):
            pass
    assert await texts(thread) == ["hi"]


async def test_an_abandoned_stream_leaves_the_thread_consistent() -> None:
    client = ScriptedChatClient(["a long answer that the caller stops reading", "next"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    stream = agent.run_stream("tell me", thread=thread)
    first = await anext(stream)
    assert first.text == "a"
    await stream.aclose()  # what `break` in an `async for` leads to
    assert await texts(thread) == ["tell me"]
    # The thread is usable at once: the turn's lock was released.
    await asyncio.wait_for(agent.run("go on", thread=thread), timeout=2)
    assert await texts(thread) == ["tell me", "go on", "next"]


async def test_breaking_out_of_a_stream_releases_the_thread() -> None:
    client = ScriptedChatClient(["one two three", "after"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    async for update in agent.run_stream("count", thread=thread):
        assert update.text == "one"
        break
    # The abandoned generator is closed by the event loop; the next run must not hang.
    response = await asyncio.wait_for(agent.run("again", thread=thread), timeout=2)
    assert response.text == "after"
    assert await texts(thread) == ["count", "again", "after"]


async def test_a_cancelled_run_keeps_the_input_and_releases_the_thread() -> None:
    client = GatedClient()
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    task = asyncio.create_task(agent.run("slow", thread=thread))
    await client.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await texts(thread) == ["slow"]
    client.started.clear()
    follow_up = asyncio.create_task(agent.run("next", thread=thread))
    await client.started.wait()
    client.gates[-1].set()
    assert (await follow_up).text == "answer 2"
