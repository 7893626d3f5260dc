"""A group chat or handoff is one trace: the run's span, a span per turn and per manager choice."""

from __future__ import annotations

import pytest

from tests._otel import Telemetry, attributes
from threadline import ChatAgent, FunctionCallContent, GroupChat, Handoff, ScriptedChatClient


def agent(name: str, *replies: object) -> ChatAgent:
    return ChatAgent(ScriptedChatClient(list(replies)), f"You are {name}.", name=name)  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_stream"])
async def test_a_group_chat_is_one_trace(telemetry: Telemetry, stream: bool) -> None:
    chat = GroupChat(
        [agent("writer", "A draft."), agent("critic", "Too short.")], max_rounds=2, name="review"
    )
    thread = chat.get_new_thread(user_id="alice")
    if stream:
        async for _ in chat.run_stream("Write a poem", thread=thread):
            pass
    else:
        await chat.run("Write a poem", thread=thread)

    root = telemetry.one("group_chat review")
    assert root.parent is None
    assert attributes(root)["gen_ai.conversation.id"] == thread.id
    assert attributes(root)["user.id"] == "alice"
    assert attributes(root)["threadline.multiagent.stop_reason"] == "max_rounds"
    assert len({s.context.trace_id for s in telemetry.spans() if s.context}) == 1
    names = [s.name for s in telemetry.children(root)]
    # The input shown to both participants (an append to each one's thread), then the manager's
    # choice and the turn, twice, and the last choice, which max_rounds stops.
    assert names == [
        "append memory",
        "append memory",
        "select_speaker",
        "turn writer",
        "select_speaker",
        "turn critic",
        "select_speaker",
    ]
    choices = telemetry.named("select_speaker")
    assert [attributes(c).get("threadline.multiagent.speaker") for c in choices[:2]] == [
        "writer",
        "critic",
    ]
    assert attributes(choices[0])["threadline.multiagent.selected_by"] == "RoundRobinManager"
    turns = [telemetry.one("turn writer"), telemetry.one("turn critic")]
    for turn, speaker in zip(turns, ["writer", "critic"], strict=True):
        assert turn.parent is not None and root.context is not None
        assert turn.parent.span_id == root.context.span_id
        assert attributes(turn)["threadline.multiagent.speaker"] == speaker
        children = [c.name for c in telemetry.children(turn)]
        # The speaker's run, then what the others were shown (one append each).
        assert children == [f"invoke_agent {speaker}", "append memory"]
        run = telemetry.children(turn)[0]
        assert [c.name for c in telemetry.children(run)] == ["read memory", "chat", "append memory"]


async def test_a_handoff_turn_says_from_and_to(telemetry: Telemetry) -> None:
    transfer = FunctionCallContent(call_id="h1", name="transfer_to_billing", arguments="{}")
    handoff = Handoff(
        [agent("triage", [transfer]), agent("billing", "Your invoice is paid.")],
        start="triage",
        name="desk",
    )
    response = await handoff.run("Is my invoice paid?")
    assert response.last_text == "Your invoice is paid."
    root = telemetry.one("handoff desk")
    assert [s.name for s in telemetry.children(root)] == ["turn triage", "turn billing"]
    triage, billing = telemetry.children(root)
    assert attributes(triage)["threadline.handoff.from"] == "triage"
    assert attributes(triage)["threadline.handoff.to"] == "billing"
    assert "threadline.handoff.to" not in attributes(billing)
    run = telemetry.children(triage)[0]
    assert run.name == "invoke_agent triage"
