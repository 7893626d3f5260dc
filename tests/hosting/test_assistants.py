"""The official client against the server's Assistants thread API: threads, messages, runs."""

from __future__ import annotations

# pyright: reportDeprecated=false
import json
from typing import Any, cast

import openai
import pytest

from tests.hosting.conftest import Server
from threadline import FunctionCallContent

# The SDK marks the Assistants API deprecated and warns on every call; the API is what we test.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _text(message: Any) -> str:
    return message.content[0].text.value


def _delta_text(delta: Any) -> str:
    return delta.delta.content[0].text.value


async def test_thread_messages_and_polled_runs(server: Server) -> None:
    server.model.add_replies("Hello Bob", "You are Bob")
    async with server.client() as client:
        assistant = await client.beta.assistants.create(
            model="threadline", name="helper", instructions="Be kind."
        )
        thread = await client.beta.threads.create(
            messages=[{"role": "user", "content": "I am Bob"}]
        )
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        assert run.usage is not None and run.usage.total_tokens > 0
        await client.beta.threads.messages.create(thread.id, role="user", content="Who am I?")
        run2 = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run2.status == "completed"
        messages = await client.beta.threads.messages.list(thread.id, order="asc")
        texts = [(m.role, _text(m)) for m in messages.data]
        assert texts == [
            ("user", "I am Bob"),
            ("assistant", "Hello Bob"),
            ("user", "Who am I?"),
            ("assistant", "You are Bob"),
        ]
        assert messages.data[1].run_id == run.id
        fetched = await client.beta.threads.runs.retrieve(run2.id, thread_id=thread.id)
        assert fetched.status == "completed"
    seen = [m.text for m in server.model.calls[1].messages]
    assert seen == ["You are a test agent.\n\nBe kind.", "I am Bob", "Hello Bob", "Who am I?"]


async def test_streamed_run(server: Server) -> None:
    server.model.add_replies("streamed answer here")
    async with server.client() as client:
        assistant = await client.beta.assistants.create(model="threadline")
        thread = await client.beta.threads.create()
        await client.beta.threads.messages.create(thread.id, role="user", content="hi")
        events: list[str] = []
        deltas: list[str] = []
        stream = await client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, stream=True
        )
        async for event in stream:
            events.append(event.event)
            if event.event == "thread.message.delta":
                deltas.append(_delta_text(event.data))
        assert events[0] == "thread.run.created" and events[-1] == "thread.run.completed"
        assert "".join(deltas) == "streamed answer here"
        async with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id
        ) as helper:
            pass
        _ = helper


async def test_tool_outputs(server: Server) -> None:
    server.model.add_replies(
        [FunctionCallContent(call_id="call_7", name="lookup", arguments='{"q": "x"}')], "found it"
    )
    tools: Any = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]
    async with server.client() as client:
        assistant = await client.beta.assistants.create(model="threadline", tools=tools)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "find x"}])
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action" and run.required_action is not None
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"q": "x"}
        with pytest.raises(openai.BadRequestError, match="active run"):
            await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        with pytest.raises(openai.BadRequestError, match="not a pending tool call"):
            await client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "nope", "output": "1"}]
            )
        with pytest.raises(openai.BadRequestError, match="Missing tool outputs"):
            await client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=[]
            )
        done = await client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
        )
        assert done.status == "completed"
        messages = await client.beta.threads.messages.list(thread.id, order="asc")
        assert _text(messages.data[-1]) == "found it"
    assert [m.role for m in server.model.calls[1].messages[1:]] == ["user", "assistant", "tool"]


async def test_isolation_and_unknown_ids(server: Server) -> None:
    async with server.client("key-alice") as alice, server.client("key-bob") as bob:
        assistant = await alice.beta.assistants.create(model="threadline")
        thread = await alice.beta.threads.create()
        with pytest.raises(openai.NotFoundError):
            await bob.beta.threads.retrieve(thread.id)
        with pytest.raises(openai.NotFoundError):
            await bob.beta.threads.messages.list(thread.id)
        with pytest.raises(openai.NotFoundError):
            await bob.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        other_thread = await bob.beta.threads.create()
        with pytest.raises(openai.NotFoundError, match="assistant"):
            await bob.beta.threads.runs.create(thread_id=other_thread.id, assistant_id=assistant.id)
        with pytest.raises(openai.BadRequestError, match="assistant_id"):
            await alice.beta.threads.runs.create(thread_id=thread.id, assistant_id=cast(Any, 5))
        with pytest.raises(openai.BadRequestError):
            await alice.beta.threads.messages.create(
                thread.id, role=cast(Any, "wizard"), content="x"
            )
        deleted = await alice.beta.threads.delete(thread.id)
        assert deleted.deleted
        with pytest.raises(openai.NotFoundError):
            await alice.beta.threads.retrieve(thread.id)
    assert server.model.calls == []


async def test_create_thread_and_run(server: Server) -> None:
    server.model.add_replies("made and answered")
    async with server.client() as client:
        assistant = await client.beta.assistants.create(model="threadline")
        run = await client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "start here"}]},
        )
        assert run.status == "completed"
        messages = await client.beta.threads.messages.list(run.thread_id, order="asc")
        assert [_text(m) for m in messages.data] == ["start here", "made and answered"]
        with pytest.raises(openai.NotFoundError):
            await client.beta.threads.create_and_run(assistant_id="asst_missing")


async def test_retried_runs_are_answered_again_not_rerun(server: Server) -> None:
    server.model.add_replies(
        [FunctionCallContent(call_id="call_r", name="lookup", arguments="{}")], "done", "streamed"
    )
    tools: Any = [{"type": "function", "function": {"name": "lookup"}}]
    async with server.client() as client:
        assistant = await client.beta.assistants.create(model="threadline", tools=tools)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        runs = [
            await client.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id,
                extra_headers={"Idempotency-Key": "run-1"},
            )
            for _ in range(2)
        ]  # fmt: skip
        # The second attempt gets the first's answer, though the thread now has an active run.
        assert runs[0].id == runs[1].id and runs[1].status == "requires_action"
        outputs: Any = [{"tool_call_id": "call_r", "output": "x"}]
        for _ in range(2):
            done = await client.beta.threads.runs.submit_tool_outputs(
                runs[0].id, thread_id=thread.id, tool_outputs=outputs,
                extra_headers={"Idempotency-Key": "submit-1"},
            )  # fmt: skip
            assert done.status == "completed"
        texts: list[str] = []
        for _ in range(2):
            stream = await client.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, stream=True,
                extra_headers={"Idempotency-Key": "stream-run"},
            )  # fmt: skip
            deltas = [
                _delta_text(e.data) async for e in stream if e.event == "thread.message.delta"
            ]
            texts.append("".join(deltas))
        assert texts == ["streamed", "streamed"]
        messages = await client.beta.threads.messages.list(thread.id, order="asc")
        assert [_text(m) for m in messages.data] == ["go", "done", "streamed"]
    assert len(server.model.calls) == 3
