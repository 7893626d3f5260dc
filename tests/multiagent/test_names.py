"""The multi-agent names that say what they are, and the old names kept as aliases.

``data/v1_states.json`` was written by threadline before the rename (schema version 1, with
``manager_state``): a handoff stopped after triage handed off, and a sequential process stopped
after its first agent. Both must still load and continue exactly there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import threadline
from threadline import (
    ChatAgent,
    GroupChat,
    GroupChatResponse,
    GroupChatThread,
    Handoff,
    MultiAgentResponse,
    MultiAgentThread,
    ScriptedChatClient,
    SequentialProcess,
    ThreadStateError,
)
from threadline.multiagent.sequential import InOrderManager

from .conftest import thread_shape

V1 = Path(__file__).with_name("data") / "v1_states.json"


def _v1(kind: str) -> dict[str, Any]:
    return json.loads(V1.read_text(encoding="utf-8"))[kind]


def _agents(scripts: dict[str, list[Any]]) -> list[ChatAgent]:
    return [
        ChatAgent(ScriptedChatClient(r), f"You are {n}.", name=n, id=f"agent_{n}")
        for n, r in scripts.items()
    ]


def test_the_old_names_are_aliases_of_the_new() -> None:
    assert GroupChatThread is MultiAgentThread and GroupChatResponse is MultiAgentResponse
    assert {"MultiAgentThread", "MultiAgentResponse"} <= set(threadline.__all__)
    thread = GroupChat(_agents({"a": [], "b": []})).get_new_thread()
    thread.runner_state["x"] = 1
    assert thread.manager_state is thread.runner_state
    thread.manager_state = {"y": 2}
    assert thread.runner_state == {"y": 2}


async def test_a_saved_state_has_runner_state_and_schema_version_2() -> None:
    response = await GroupChat(_agents({"a": ["a1"], "b": []})).run("Go.", max_rounds=1)
    assert isinstance(response, MultiAgentResponse)
    state = await response.thread.serialize()
    assert state["schema_version"] == 2 and "runner_state" in state
    assert "manager_state" not in state
    # The old key in a new state is a damaged state, named as such.
    state["manager_state"] = state.pop("runner_state")
    with pytest.raises(ThreadStateError, match="manager_state"):
        await GroupChat(_agents({"a": [], "b": []})).deserialize_thread(state)


async def test_a_handoff_saved_before_the_rename_continues_exactly_there() -> None:
    state = _v1("handoff")
    assert state["schema_version"] == 1 and state["manager_state"]["seen"] == {"triage": 3}
    handoff = Handoff(_agents({"triage": [], "billing": ["Paid."]}))
    thread = await handoff.deserialize_thread(state)
    assert thread.runner_state == state["manager_state"] and thread.next_speaker == "billing"
    response = await handoff.run(thread=thread)
    assert response.text == "Paid."
    billing = await thread_shape(thread.participants["billing"])
    assert [text for _, _, text in billing].count("Is my invoice paid?") == 1
    assert billing[-1] == ("assistant", "billing", "Paid.")
    again = await thread.serialize()
    assert again["schema_version"] == 2 and again["runner_state"]["seen"]["billing"] == 4
    # Saved again by this version, it keeps its participants' old ids and still restores.
    assert again["participants"]["billing"]["thread_id"].startswith("thread_")
    restored = await handoff.deserialize_thread(json.loads(json.dumps(again)))
    assert restored.last_speaker == "billing"


async def test_a_sequential_process_saved_before_the_rename_continues_with_its_next_agent() -> None:
    process = SequentialProcess(_agents({"drafter": [], "reviewer": ["Review."]}))
    thread = await process.deserialize_thread(_v1("sequential"))
    response = await process.run(thread=thread)
    assert [(m.author_name, m.text) for m in response.messages] == [("reviewer", "Review.")]
    assert response.stop_reason == "done" and thread.next_speaker is None


async def test_a_sequential_process_is_a_group_chat_with_a_fixed_order_manager() -> None:
    process = SequentialProcess(_agents({"x": ["x1", "x2"], "y": ["y1", "y2"], "z": ["z1"]}))
    assert isinstance(process, GroupChat) and isinstance(process.manager, InOrderManager)
    response = await process.run("Go.")
    assert [m.text for m in response.messages] == ["x1", "y1", "z1"]
    assert response.stop_reason == "done" and response.next_speaker is None
    # New input starts a new pass from the first agent, whoever spoke last.
    again = await process.run("Again, shorter.", thread=response.thread, max_rounds=2)
    assert [m.text for m in again.messages] == ["x2", "y2"]
    assert again.stop_reason == "max_rounds" and again.next_speaker == "z"
