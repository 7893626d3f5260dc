"""Deferred tools: the model calls a tool the caller runs; the run stops, the caller answers.

A ``FunctionTool`` without a function is offered to the model like any tool. When the model calls
it, the run stores the call (and the results of any ordinary calls of the same answer), returns the
call in ``pending_calls`` and ends normally; the caller submits the result as the next run's input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests._helpers import store_of
from threadline import (
    AgentRunResponseUpdate,
    AgentThread,
    ChatAgent,
    ChatMessage,
    Context,
    ContextProvider,
    FunctionCallContent,
    FunctionResultContent,
    FunctionTool,
    Role,
    ScriptedChatClient,
    UsageError,
)

ASK_USER = FunctionTool(
    name="ask_user",
    description="Ask the user a question and wait for the answer.",
    parameters={
        "type": "object",
        "properties": {"question": {"type": "string"}},
        "required": ["question"],
    },
)


def call(name: str, arguments: object, call_id: str) -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def answer(call_id: str, result: str) -> ChatMessage:
    return ChatMessage(Role.TOOL, contents=[FunctionResultContent(call_id=call_id, result=result)])


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class Recorder(ContextProvider):
    """Records every ``invoked`` call, and adds one context message to every model call."""

    def __init__(self) -> None:
        super().__init__()
        self.invocations: list[tuple[list[str], BaseException | None]] = []

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        return Context(messages=[ChatMessage(Role.USER, "remember: tea")])

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        self.invocations.append(([m.role.value for m in response_messages], exception))


async def test_a_deferred_call_stops_the_run_and_the_result_continues_it() -> None:
    client = ScriptedChatClient(
        [[call("ask_user", {"question": "Which city?"}, "c1")], "It is sunny in Oslo."]
    )
    agent = ChatAgent(client, tools=[ASK_USER])
    thread = agent.get_new_thread()

    first = await agent.run("Weather?", thread=thread)
    (pending,) = first.pending_calls
    assert (pending.name, pending.call_id) == ("ask_user", "c1")
    assert pending.parse_arguments() == {"question": "Which city?"}
    assert first.text == ""
    # The call is stored, so the thread is consistent and the caller may answer later.
    roles = [m.role for m in await store_of(thread).list_messages()]
    assert roles == [Role.USER, Role.ASSISTANT]

    second = await agent.run(answer("c1", "Oslo"), thread=thread)
    assert second.pending_calls == ()
    assert second.text == "It is sunny in Oslo."
    sent = client.calls[1].messages
    assert [m.role for m in sent] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    result = sent[2].contents[0]
    assert isinstance(result, FunctionResultContent) and result.result == "Oslo"
    roles = [m.role for m in await store_of(thread).list_messages()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    client.assert_all_replies_used()


async def test_ordinary_calls_of_the_same_answer_run_and_are_stored() -> None:
    client = ScriptedChatClient(
        [
            [call("add", {"a": 1, "b": 2}, "c1"), call("ask_user", {"question": "ok?"}, "c2")],
            "Done: 3.",
        ]
    )
    agent = ChatAgent(client, tools=[add, ASK_USER])
    thread = agent.get_new_thread()
    response = await agent.run("add and ask", thread=thread)
    assert [c.call_id for c in response.pending_calls] == ["c2"]
    assert [m.role for m in response.messages] == [Role.ASSISTANT, Role.TOOL]
    (ran,) = response.messages[1].contents
    assert isinstance(ran, FunctionResultContent) and (ran.call_id, ran.result) == ("c1", 3)

    await agent.run(answer("c2", "yes"), thread=thread)
    stored = await store_of(thread).list_messages()
    assert [m.role for m in stored] == [
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.TOOL,
        Role.ASSISTANT,
    ]
    assert stored[-1].text == "Done: 3."


async def test_providers_see_a_deferred_stop_as_an_ordinary_outcome() -> None:
    recorder = Recorder()
    client = ScriptedChatClient([[call("ask_user", {"question": "?"}, "c1")], "thanks"])
    agent = ChatAgent(client, tools=[ASK_USER], context_providers=[recorder])
    thread = agent.get_new_thread()
    await agent.run("hi", thread=thread)
    await agent.run(answer("c1", "fine"), thread=thread)
    assert recorder.invocations == [(["assistant"], None), (["assistant"], None)]
    # The context message goes after the answered result, never between a call and its result.
    assert [m.text or m.role.value for m in client.calls[1].messages] == [
        "hi",
        "assistant",
        "tool",
        "remember: tea",
    ]


async def test_a_stream_yields_the_deferred_call_and_ends() -> None:
    client = ScriptedChatClient([[call("ask_user", {"question": "?"}, "c1")], "ok"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    updates: list[AgentRunResponseUpdate] = [
        u async for u in agent.run_stream("hi", thread=thread, tools=[ASK_USER])
    ]
    calls = [c for u in updates for c in u.contents if isinstance(c, FunctionCallContent)]
    assert [c.call_id for c in calls] == ["c1"]
    assert not any(isinstance(c, FunctionResultContent) for u in updates for c in u.contents)
    assert len(client.calls) == 1
    assert [m.role for m in await store_of(thread).list_messages()] == [Role.USER, Role.ASSISTANT]
    # Run-level tools declare deferred tools too; the answer continues the same thread.
    assert (await agent.run(answer("c1", "x"), thread=thread, tools=[ASK_USER])).text == "ok"


async def test_deferred_calls_on_a_service_managed_thread() -> None:
    client = ScriptedChatClient(
        [[call("ask_user", {"question": "?"}, "c1")], "got it"], service_threads=True
    )
    agent = ChatAgent(client, tools=[ASK_USER])
    first = await agent.run("hi")
    assert [c.call_id for c in first.pending_calls] == ["c1"]
    thread = first.thread
    assert thread is not None and thread.service_thread_id is not None
    second = await agent.run(answer("c1", "yes"), thread=thread)
    assert second.text == "got it"
    history = client.conversations[thread.service_thread_id]
    assert [m.role for m in history] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


async def test_a_deferred_tool_cannot_be_invoked_and_bad_declarations_are_refused() -> None:
    with pytest.raises(UsageError, match="'ask_user' is deferred"):
        await ASK_USER.invoke({"question": "?"})
    with pytest.raises(UsageError, match="tool name 'two words' is not usable"):
        FunctionTool(name="two words")
    with pytest.raises(UsageError, match="must be a JSON schema object"):
        FunctionTool(name="x", parameters="string")  # pyright: ignore[reportArgumentType]
    with pytest.raises(UsageError, match="must be callable"):
        FunctionTool(name="x", func=42)  # pyright: ignore[reportArgumentType]
    assert ASK_USER.is_deferred and not FunctionTool(name="f", func=add).is_deferred


async def test_a_tool_with_a_function_and_no_arguments_model_gets_the_arguments_as_sent() -> None:
    def echo(**kwargs: object) -> dict[str, object]:
        return kwargs

    raw = FunctionTool(name="echo", func=echo)
    assert await raw.invoke({"a": 1}) == {"a": 1}
