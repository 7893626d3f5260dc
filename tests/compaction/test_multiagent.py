"""Group chats and processes take a ``compaction`` for every participant that has none.

Each participant sends its own thread to its own model, so each compacts its own thread; the
runner's setting is the default. The models are ScriptedChatClients on real SQLite threads: what
is asserted is what is stored, which a script makes exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    Compaction,
    GroupChat,
    Handoff,
    ScriptedChatClient,
    SequentialProcess,
    SQLiteChatMessageStore,
    UsageError,
)
from threadline.compaction import summary_mark

FILLER = "Tell me more about the history of the printing press in Europe, in some detail"


async def _nothing(messages: Sequence[ChatMessage]) -> str | None:
    return None  # the extractive summary: deterministic text


def _agent(name: str, path: Path, compaction: Compaction | None = None) -> ChatAgent:
    return ChatAgent(
        ScriptedChatClient([f"{name}: a short answer about printing."] * 20),
        "be brief",
        name=name,
        chat_message_store_factory=lambda: SQLiteChatMessageStore(path),
        compaction=compaction,
    )


async def test_a_group_chat_compacts_each_participant_that_has_no_compaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    own = Compaction(max_tokens=100_000, summarizer=_nothing)  # never reached
    shared = Compaction(max_tokens=200, summarizer=_nothing)
    chat = GroupChat(
        [_agent("ann", path), _agent("bob", path, own)],
        max_rounds=2,
        compaction=shared,
        transcript_store_factory=lambda: SQLiteChatMessageStore(path),
    )
    assert chat.agents["ann"].compaction is shared and chat.agents["bob"].compaction is own

    thread = chat.get_new_thread()
    await chat.run("Hello. My name is Alice and I live in Lyon.", thread=thread)
    for i in range(8):
        await chat.run(f"{FILLER} ({i})", thread=thread)

    stored: dict[str, list[ChatMessage]] = {}
    for name, participant in thread.participants.items():
        assert participant.message_store is not None
        stored[name] = await participant.message_store.list_messages()
    ann = [m for m in stored["ann"] if summary_mark(m) is not None]
    assert ann, "ann's thread outgrew the runner's 200-token budget but was never compacted"
    assert "Lyon" in ann[-1].text  # the user's facts survive into the summary
    assert not [m for m in stored["bob"] if summary_mark(m) is not None]  # its own setting won
    # Nothing is lost: every message the summary stands for is still in ann's thread.
    assert len([m for m in stored["ann"] if summary_mark(m) is None]) == len(stored["bob"])


def test_processes_and_handoffs_take_it_too(tmp_path: Path) -> None:
    compaction = Compaction(max_tokens=500, summarizer=_nothing)
    agents = [_agent("ann", tmp_path / "a.db"), _agent("bob", tmp_path / "a.db")]
    for runner in (
        SequentialProcess(agents, compaction=compaction),
        Handoff(agents, compaction=compaction),
    ):
        assert all(agent.compaction is compaction for agent in runner.agents.values())


def test_a_compaction_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="compaction must be a Compaction"):
        GroupChat([_agent("ann", tmp_path / "a.db")], compaction="yes")  # type: ignore[arg-type]
