"""Approvals in multi-agent runs: a waiting call pauses the whole run and resumes exactly.

The waiting request is saved with the ``MultiAgentThread`` (the asking participant's thread holds
it, ``awaiting`` names who asked); the answer is the next run's input, and that participant
continues its turn. Checked after a resume in another process: the same speaker continues,
nothing is duplicated, and no participant thread holds a call without its result.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    GroupChat,
    Handoff,
    MultiAgentThread,
    Role,
    ScriptedChatClient,
    UsageError,
    tool,
)
from threadline.clients.scripted import ScriptedReply
from threadline.types.contents import content_to_dict

ROOT = Path(__file__).resolve().parents[2]
REFUNDS: list[int] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    REFUNDS.clear()


@tool(approval_mode="always_require")
def refund(amount: int) -> str:
    """Refund money to the customer."""
    REFUNDS.append(amount)
    return f"refunded {amount}"


def call(name: str, call_id: str, **arguments: Any) -> list[FunctionCallContent]:
    return [FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))]


def team(scripts: Mapping[str, Sequence[ScriptedReply]]) -> list[ChatAgent]:
    return [
        ChatAgent(
            ScriptedChatClient(list(replies)),
            f"You are {name}.",
            name=name,
            id=f"agent_{name}",
            tools=[refund] if name == "billing" else [],
        )
        for name, replies in scripts.items()
    ]


async def well_formed(thread: MultiAgentThread) -> None:
    """No participant thread holds a call without its result (or a result without its call)."""
    for name, own in thread.participants.items():
        assert own.message_store is not None
        messages = await own.message_store.list_messages()
        calls = {c.call_id for m in messages for c in m.contents if type(c) is FunctionCallContent}
        results = {
            c.call_id for m in messages for c in m.contents if type(c) is FunctionResultContent
        }
        assert calls == results, name
    transcript = await thread.messages()
    ids = [m.message_id for m in transcript]
    assert len(ids) == len(set(ids))


HANDOFF_FIRST: dict[str, list[ScriptedReply]] = {
    "triage": [call("transfer_to_billing", "h1")],
    "billing": [call("refund", "r1", amount=30)],
}
HANDOFF_REST: dict[str, list[ScriptedReply]] = {"triage": [], "billing": ["Refunded 30."]}


RESUME = """
import asyncio, json, sys
from tests.multiagent.test_approvals import HANDOFF_REST, REFUNDS, team
from threadline import ChatMessage, Handoff, Role
from threadline.types.contents import content_from_dict

async def main():
    handoff = Handoff(team(HANDOFF_REST), start="triage")
    thread = await handoff.deserialize_thread(json.loads(sys.stdin.read()))
    answer = ChatMessage(Role.USER, contents=[content_from_dict(json.loads(sys.argv[1]))])
    resumed = await handoff.run(answer, thread=thread)
    state = await resumed.thread.serialize()
    print(json.dumps({"text": resumed.text, "stop": resumed.stop_reason, "refunds": REFUNDS,
                      "state": state}))

asyncio.run(main())
"""


async def test_a_handoff_pauses_for_approval_and_the_same_agent_resumes_in_another_process() -> (
    None
):
    handoff = Handoff(team(HANDOFF_FIRST), start="triage")
    first = await handoff.run("Refund my 30 euros.")
    assert first.stop_reason == "pending" and REFUNDS == []
    (request,) = first.user_input_requests
    assert request.function_call.name == "refund"
    assert first.thread.awaiting == "billing"
    state = await first.thread.serialize()
    assert state["awaiting"] == "billing"

    answer = json.dumps(content_to_dict(request.create_response(True)))
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", textwrap.dedent(RESUME), answer],
        input=json.dumps(state),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert (out["text"], out["stop"], out["refunds"]) == ("Refunded 30.", "done", [30])

    restored = await Handoff(team(HANDOFF_REST), start="triage").deserialize_thread(out["state"])
    assert restored.awaiting is None and restored.last_speaker == "billing"
    await well_formed(restored)
    transcript = [(m.role, m.author_name) for m in await restored.messages()]
    assert transcript == [
        (Role.USER, None),
        (Role.ASSISTANT, "triage"),
        (Role.TOOL, "triage"),
        (Role.ASSISTANT, "billing"),
        (Role.TOOL, "billing"),
        (Role.ASSISTANT, "billing"),
    ]


async def test_a_paused_run_refuses_anything_but_the_answers() -> None:
    handoff = Handoff(team(HANDOFF_FIRST), start="triage")
    first = await handoff.run("Refund my 30 euros.")
    before = await first.thread.serialize()
    with pytest.raises(UsageError, match="waits for approval"):
        await handoff.run("hello?", thread=first.thread)
    with pytest.raises(UsageError, match="waits for approval"):
        await handoff.run(thread=first.thread)
    assert await first.thread.serialize() == before
    (request,) = first.user_input_requests
    fresh = Handoff(team({"triage": ["Hi."], "billing": []}), start="triage")
    other = await fresh.run("Hi.")
    with pytest.raises(UsageError, match="no call waiting"):
        await fresh.run(
            ChatMessage(Role.USER, contents=[request.create_response(True)]), thread=other.thread
        )
    assert REFUNDS == []


async def test_a_group_chat_pauses_and_the_same_speaker_continues() -> None:
    agents = team(
        {
            "triage": ["Billing, please refund.", "Thanks."],
            "billing": [call("refund", "r1", amount=5), "Done: 5."],
        }
    )
    chat = GroupChat(agents, max_rounds=3)
    first = await chat.run("I want 5 back.")
    assert first.stop_reason == "pending" and first.thread.next_speaker == "billing"
    (request,) = first.user_input_requests
    thread = await chat.deserialize_thread(await first.thread.serialize())

    rest = await chat.run(
        ChatMessage(Role.USER, contents=[request.create_response(False, reason="too late")]),
        thread=thread,
        max_rounds=2,
    )
    assert REFUNDS == []
    assert [m.author_name for m in rest.messages] == ["billing", "billing", "triage"]
    (refusal,) = rest.messages[0].contents
    assert isinstance(refusal, FunctionResultContent) and "too late" in str(refusal.exception)
    await well_formed(rest.thread)


async def test_a_streamed_handoff_pauses_and_resumes_the_same_way() -> None:
    handoff = Handoff(team({**HANDOFF_FIRST, "billing": [*HANDOFF_FIRST["billing"], "Refunded."]}))
    thread = handoff.get_new_thread()
    updates = [u async for u in handoff.run_stream("Refund my 30 euros.", thread=thread)]
    (request,) = [r for u in updates for r in u.user_input_requests]
    assert thread.awaiting == "billing" and REFUNDS == []
    answer = ChatMessage(Role.USER, contents=[request.create_response(True)])
    rest = [u async for u in handoff.run_stream(answer, thread=thread)]
    assert "".join(u.text for u in rest) == "Refunded." and REFUNDS == [30]
    assert thread.awaiting is None
    await well_formed(thread)
