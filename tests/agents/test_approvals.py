"""Approvals: a call to a tool with ``approval_mode`` waits for a person, in the thread itself.

The run stops before the call, ``response.user_input_requests`` holds the request and the thread
stores it; the answer (``request.create_response(...)``) is the next run's input. These tests use
the scripted client (deterministic calls) over real stores, and one resume in another process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests._helpers import store_of
from threadline import (
    AgentRunResponseUpdate,
    ChatAgent,
    ChatMessage,
    ClientError,
    ConcurrentThreadUpdateError,
    ErrorContent,
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    FunctionResultContent,
    FunctionTool,
    MessageFormatError,
    Role,
    ScriptedChatClient,
    UsageError,
    tool,
)
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types.contents import content_from_dict, content_to_dict

SENT: list[str] = []


@tool(approval_mode="always_require")
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


ADDED: list[int] = []


def add(a: int, b: int) -> int:
    """Add two numbers."""
    ADDED.append(a + b)
    return a + b


@pytest.fixture(autouse=True)
def _reset() -> None:
    SENT.clear()
    ADDED.clear()


def call(name: str, arguments: object, call_id: str) -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def answer(*responses: FunctionApprovalResponseContent) -> ChatMessage:
    return ChatMessage(Role.USER, contents=list(responses))


EMAIL = call("send_email", {"to": "bob@example.com", "body": "hi"}, "c2")


def agent_for(*replies: object, **kwargs: object) -> tuple[ChatAgent, ScriptedChatClient]:
    client = ScriptedChatClient(list(replies))  # pyright: ignore[reportArgumentType]
    return ChatAgent(client, tools=[send_email, add], **kwargs), client  # pyright: ignore[reportArgumentType]


async def test_an_approved_call_runs_once_and_ordinary_calls_are_not_repeated() -> None:
    agent, client = agent_for([call("add", {"a": 1, "b": 2}, "c1"), EMAIL], "Sent, and 3.")
    thread = agent.get_new_thread()

    first = await agent.run("add and mail", thread=thread)
    (request,) = first.user_input_requests
    assert request.function_call == EMAIL
    assert SENT == [] and ADDED == [3]
    assert first.pending_calls == ()
    # The request is stored in the run's last assistant message.
    stored = await store_of(thread).list_messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert request in stored[1].contents

    second = await agent.run(answer(request.create_response(True)), thread=thread)
    assert second.text == "Sent, and 3." and second.user_input_requests == []
    assert SENT == ["bob@example.com"] and ADDED == [3]
    # The model saw both results right after the calls, and nothing of the approval itself.
    sent = client.calls[1].messages
    results = [c for m in sent for c in m.contents if type(c) is FunctionResultContent]
    assert [(r.call_id, r.result) for r in results] == [
        ("c1", 3),
        ("c2", "sent to bob@example.com"),
    ]
    assert sent[-1].role == Role.TOOL
    client.assert_all_replies_used()


async def test_a_refusal_reaches_the_model_with_its_reason_and_the_tool_never_runs() -> None:
    agent, client = agent_for([EMAIL], "OK, I did not send it.")
    thread = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests

    response = await agent.run(
        answer(request.create_response(False, reason="not today")), thread=thread
    )
    assert response.text == "OK, I did not send it."
    assert SENT == []
    result = client.calls[1].messages[-1].contents[-1]
    assert isinstance(result, FunctionResultContent) and result.call_id == "c2"
    assert result.exception is not None and "refused" in result.exception
    assert "not today" in result.exception


async def test_a_predicate_decides_per_call() -> None:
    def big(arguments: Mapping[str, Any]) -> bool:
        return int(arguments.get("a", 0)) > 100

    checked_add = FunctionTool.from_function(add, approval_mode=big)
    client = ScriptedChatClient(
        [[call("add", {"a": 1, "b": 1}, "s")], "2", [call("add", {"a": 500, "b": 1}, "b")]]
    )
    agent = ChatAgent(client, tools=[checked_add])
    thread = agent.get_new_thread()
    assert (await agent.run("small", thread=thread)).user_input_requests == []
    (request,) = (await agent.run("big", thread=thread)).user_input_requests
    assert request.function_call.call_id == "b" and ADDED == [2]


async def test_bad_answers_are_refused_and_change_nothing() -> None:
    agent, _ = agent_for([EMAIL], [call("send_email", {"to": "x@y", "body": "b"}, "z")], "done")
    thread = agent.get_new_thread()
    other = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests
    (foreign,) = (await agent.run("mail x", thread=other)).user_input_requests
    before = list(await store_of(thread).list_messages())

    changed = FunctionApprovalResponseContent(
        id=request.id,
        approved=True,
        function_call=call("send_email", {"to": "eve@example.com", "body": "hi"}, "c2"),
    )
    other_id = FunctionApprovalResponseContent(
        id=request.id,
        approved=True,
        function_call=call("send_email", {"to": "bob@example.com", "body": "hi"}, "c9"),
    )
    cases = {
        "changed arguments": (answer(changed), "exact call"),
        "another call id": (answer(other_id), "exact call"),
        "another thread": (answer(foreign.create_response(True)), "another thread"),
        "twice in one message": (
            answer(request.create_response(True), request.create_response(True)),
            "twice",
        ),
        "plain text while waiting": (ChatMessage(Role.USER, "hello?"), "waits for approval"),
        "text beside the answer": (
            ChatMessage(Role.USER, "yes", contents=[request.create_response(True)]),
            "alone",
        ),
    }
    for name, (message, words) in cases.items():
        with pytest.raises(UsageError, match=words):
            await agent.run(message, thread=thread)
        assert list(await store_of(thread).list_messages()) == before, name
    assert SENT == []

    await agent.run(answer(request.create_response(True)), thread=thread)
    with pytest.raises(UsageError, match="already answered"):
        await agent.run(answer(request.create_response(True)), thread=thread)
    assert SENT == ["bob@example.com"]


async def test_every_waiting_request_is_answered_in_one_message() -> None:
    mail_two = [EMAIL, call("send_email", {"to": "ann@example.com", "body": "yo"}, "c3")]
    agent, _ = agent_for(mail_two, "both sent")
    thread = agent.get_new_thread()
    first, second = (await agent.run("mail both", thread=thread)).user_input_requests
    with pytest.raises(UsageError, match="no answer"):
        await agent.run(answer(first.create_response(True)), thread=thread)
    assert SENT == []
    done = await agent.run(
        answer(second.create_response(True), first.create_response(False)), thread=thread
    )
    assert done.text == "both sent" and SENT == ["ann@example.com"]


async def test_a_second_answer_racing_the_first_cannot_run_the_call(tmp_path: Path) -> None:
    """Two thread objects over one store (two processes, say) both answer: one claim wins."""
    agent, _ = agent_for([EMAIL], "sent", "sent again")
    agent.chat_message_store_factory = lambda: SQLiteChatMessageStore(tmp_path / "t.db")
    thread = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests
    twin = await agent.deserialize_thread(await thread.serialize())
    # Both turns begin (read the same version) before either claims.
    turn_a = await agent._begin(
        thread, [answer(request.create_response(True))], None, {}, stream=False
    )
    turn_b = await agent._begin(
        twin, [answer(request.create_response(True))], None, {}, stream=False
    )
    async for _ in agent._loop(turn_a, stream=False):
        pass
    with pytest.raises(ConcurrentThreadUpdateError):
        async for _ in agent._loop(turn_b, stream=False):
            pass
    assert SENT == ["bob@example.com"]


async def test_a_call_claimed_but_never_finished_is_recorded_in_doubt_not_rerun() -> None:
    agent, client = agent_for([EMAIL], "noted")
    thread = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests
    store = store_of(thread)
    # What a process killed between the claim and the result leaves behind.
    claim = ChatMessage(Role.TOOL, contents=[request.create_response(True)])
    await store.add_messages([claim], expected_version=len(await store.list_messages()))

    await agent.run("what happened?", thread=thread)
    assert SENT == []
    results = [c for m in client.calls[1].messages for c in m.contents]
    (outcome,) = [c for c in results if type(c) is FunctionResultContent]
    assert outcome.exception is not None and "unknown" in outcome.exception


async def test_streaming_yields_the_requests() -> None:
    agent, _ = agent_for([EMAIL], "sent")
    thread = agent.get_new_thread()
    updates: list[AgentRunResponseUpdate] = [
        u async for u in agent.run_stream("mail bob", thread=thread)
    ]
    requests = [c for u in updates for c in u.contents if type(c) is FunctionApprovalRequestContent]
    assert [r.function_call for r in requests] == [EMAIL]
    outcome = [
        u async for u in agent.run_stream(answer(requests[0].create_response(True)), thread=thread)
    ]
    assert SENT == ["bob@example.com"]
    assert any(type(c) is FunctionResultContent for u in outcome for c in u.contents)


async def test_a_service_managed_thread_refuses_approval_tools_before_the_model() -> None:
    client = ScriptedChatClient(["never"], service_threads=True)
    agent = ChatAgent(client, tools=[send_email])
    with pytest.raises(UsageError, match="kept by a service"):
        await agent.run("mail bob")
    assert client.calls == []


def test_bad_approval_modes_are_refused() -> None:
    with pytest.raises(UsageError, match="approval_mode"):
        FunctionTool(name="x", func=add, approval_mode="sometimes")  # pyright: ignore[reportArgumentType]


def test_approval_contents_round_trip_and_malformed_ones_are_refused() -> None:
    request = FunctionApprovalRequestContent(function_call=EMAIL)
    response = request.create_response(False, reason="no")
    for content in (request, response):
        assert content_from_dict(json.loads(json.dumps(content_to_dict(content)))) == content
    with pytest.raises(MessageFormatError, match="function_call"):
        content_from_dict(
            {
                "type": "function_approval_request",
                "id": "a",
                "function_call": {"type": "text", "text": "x"},
            }
        )
    with pytest.raises(MessageFormatError, match="approved"):
        content_from_dict(
            {
                "type": "function_approval_response",
                "id": "a",
                "approved": "yes",
                "function_call": content_to_dict(EMAIL),
            }
        )


RESUME = """
import asyncio, json, sys
from threadline import ChatAgent, ChatMessage, FunctionApprovalRequestContent, Role
from threadline import ScriptedChatClient, tool
from threadline.threads.stores.sqlite import SQLiteChatMessageStore

sent = []

@tool(approval_mode="always_require")
def send_email(to: str, body: str) -> str:
    '''Send an email.'''
    sent.append(to)
    return "sent"

async def main():
    agent = ChatAgent(
        ScriptedChatClient(["Sent it."]),
        tools=[send_email],
        chat_message_store_factory=lambda: SQLiteChatMessageStore(sys.argv[1]),
    )
    thread = await agent.deserialize_thread(json.loads(sys.stdin.read()))
    last = (await thread.message_store.list_messages())[-1]
    (request,) = [c for c in last.contents if type(c) is FunctionApprovalRequestContent]
    reply = await agent.run(
        ChatMessage(Role.USER, contents=[request.create_response(True)]), thread=thread
    )
    print(json.dumps({"text": reply.text, "sent": sent}))

asyncio.run(main())
"""


async def test_a_request_is_answered_after_a_restart_in_another_process(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    agent, _ = agent_for([EMAIL])
    agent.chat_message_store_factory = lambda: SQLiteChatMessageStore(db)
    thread = agent.get_new_thread()
    await agent.run("mail bob", thread=thread)
    state = json.dumps(await thread.serialize())

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", textwrap.dedent(RESUME), str(db)],
        input=state,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "text": "Sent it.",
        "sent": ["bob@example.com"],
    }
    assert SENT == []  # it ran there, once, not here
    roles = [m.role for m in await store_of(thread).list_messages()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.TOOL, Role.ASSISTANT]


async def test_a_result_is_kept_when_the_model_fails_after_the_approved_call_ran() -> None:
    agent, _ = agent_for([EMAIL])  # no reply left for the call after the tool: it fails
    thread = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests
    with pytest.raises(ClientError):
        await agent.run(answer(request.create_response(True)), thread=thread)
    assert SENT == ["bob@example.com"]
    last = (await store_of(thread).list_messages())[-1]
    assert last.role == Role.TOOL
    (result, mark) = last.contents
    assert isinstance(result, FunctionResultContent) and result.result == "sent to bob@example.com"
    assert isinstance(mark, ErrorContent)
    # Nothing waits any more: the next turn is an ordinary one, and the call is not run again.
    agent.chat_client.add_replies("It was sent.")  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert (await agent.run("did it go?", thread=thread)).text == "It was sent."
    assert SENT == ["bob@example.com"]


async def test_the_response_holds_the_results_of_the_answered_calls() -> None:
    agent, _ = agent_for([EMAIL], "Done.")
    thread = agent.get_new_thread()
    (request,) = (await agent.run("mail bob", thread=thread)).user_input_requests
    response = await agent.run(answer(request.create_response(True)), thread=thread)
    assert [m.role for m in response.messages] == [Role.TOOL, Role.ASSISTANT]
    stored = await store_of(thread).list_messages()
    assert [m.message_id for m in stored[-2:]] == [m.message_id for m in response.messages]
