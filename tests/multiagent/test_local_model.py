"""A group chat and a handoff with the embedded model: structure only (who spoke), not the words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    GroupChat,
    Handoff,
    RunOptions,
)
from threadline.clients.local import LocalChatClient


@pytest.fixture(scope="module")
def model(local_model_path: Path) -> Iterator[LocalChatClient]:
    client = LocalChatClient(local_model_path, n_ctx=1024, max_tokens=48)
    yield client
    client.close()


async def test_a_group_chat_of_embedded_agents(model: LocalChatClient) -> None:
    tiny = RunOptions(max_tokens=8, temperature=0.0)
    agents = [
        ChatAgent(model, f"You are {n}. Answer in three words.", name=n, default_options=tiny)
        for n in ("poet", "critic", "editor")
    ]
    response = await GroupChat(agents, max_rounds=4).run("Name a color.")
    assert [m.author_name for m in response.messages] == ["poet", "critic", "editor", "poet"]
    assert response.next_speaker == "critic"
    for name, thread in response.thread.participants.items():
        assert thread.message_store is not None
        own = await thread.message_store.list_messages()
        assert [m.role.value for m in own if m.author_name == name] in (
            ["assistant"] * 2,
            ["assistant"],
        )
        assert len(own) == 5  # the user's message and four turns, each exactly once


async def test_a_handoff_of_embedded_agents(model: LocalChatClient) -> None:
    forced = RunOptions(max_tokens=48, temperature=0.0, tool_choice="required")
    triage = ChatAgent(
        model, "Hand every question to billing.", name="triage", default_options=forced
    )
    billing = ChatAgent(
        model,
        "You are billing. Answer briefly.",
        name="billing",
        default_options=RunOptions(max_tokens=8, temperature=0.0),
    )
    handoff = Handoff(
        [triage, billing], max_handoffs=1, graph={"triage": ["billing"], "billing": []}
    )
    response = await handoff.run("Is my invoice paid?")
    authors = [m.author_name for m in response.messages]
    assert authors[0] == "triage"
    calls = [c for m in response.messages for c in m.contents if type(c) is FunctionCallContent]
    assert [c.name for c in calls] == ["transfer_to_billing"]
    results = [c for m in response.messages for c in m.contents if type(c) is FunctionResultContent]
    assert [r.call_id for r in results] == [calls[0].call_id]
    assert authors[-1] == "billing" and response.thread.last_speaker == "billing"
