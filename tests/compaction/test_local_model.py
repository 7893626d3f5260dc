"""Compaction with the embedded model (Qwen2.5 0.5B): it writes the summary, facts survive.

A small model's summary is not trusted alone (see ``threadline.compaction.summary``); these tests
check the end result a user relies on, whichever path made it: the name, city and date the user
gave are in the stored summary, and the model is sent that summary instead of the old turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import ChatAgent, ChatMessage, Compaction, Role, SQLiteChatMessageStore
from threadline.clients.local import LocalChatClient
from threadline.compaction import summary_mark
from threadline.compaction.summary import summarize
from threadline.history import estimate_tokens


@pytest.fixture(scope="module")
def model(local_model_path: Path) -> Iterator[LocalChatClient]:
    client = LocalChatClient(local_model_path, n_ctx=1024, max_tokens=48)
    yield client
    client.close()


async def test_the_model_summary_keeps_the_users_facts(model: LocalChatClient) -> None:
    chat = [
        ChatMessage(Role.USER, "Hi, my name is Alice Moreau and I live in Lyon."),
        ChatMessage(Role.ASSISTANT, "Nice to meet you, Alice! How can I help?"),
        ChatMessage(
            Role.USER, "I was born on 12 March 1990. What is a good first programming language?"
        ),
        ChatMessage(Role.ASSISTANT, "Python is a good first language: it is simple and readable."),
        ChatMessage(Role.USER, "How do I read a file in Python?"),
        ChatMessage(Role.ASSISTANT, "Use open('name.txt') in a with block and call read()."),
    ]
    made = await summarize(chat, writer=model, max_tokens=100, count_tokens=estimate_tokens)
    assert made is not None
    text, method = made
    assert method in ("model", "extractive")
    for fact in ("Alice", "Moreau", "Lyon", "12 March 1990"):
        assert fact in text, (method, text)
    assert estimate_tokens(ChatMessage(Role.SYSTEM, text)) <= 100


async def test_a_long_chat_is_compacted_and_the_model_sees_the_first_turn_facts(
    model: LocalChatClient, tmp_path: Path
) -> None:
    agent = ChatAgent(
        model,
        "You are a helpful assistant. Answer in one short sentence.",
        chat_message_store_factory=lambda: SQLiteChatMessageStore(tmp_path / "t.db"),
        compaction=Compaction(),
    )
    thread = agent.get_new_thread()
    await agent.run("My name is Alice and I live in Lyon.", thread=thread)
    topics = ["the moon", "tea", "trains", "rivers", "bread", "owls", "glass", "chess"]
    summary: ChatMessage | None = None
    stored: list[ChatMessage] = []
    for turn in range(24):
        topic = topics[turn % len(topics)]
        await agent.run(
            f"Tell me one fact about {topic}, please, in simple words for a beginner who "
            "knows nothing about it yet.",
            thread=thread,
        )
        assert thread.message_store is not None
        stored = await thread.message_store.list_messages()
        found = [m for m in stored if summary_mark(m) is not None]
        if found:
            summary = found[-1]
            break
    assert summary is not None, "24 turns in a 1,024-token window were never compacted"
    assert "Alice" in summary.text and "Lyon" in summary.text
    # The summary went to the model in place of turn 1, which stays in the thread.
    assert any(m.message_id == summary.message_id for m in model.last_sent)
    assert all("My name is Alice" not in m.text for m in model.last_sent if m.role == Role.USER)
    assert stored[0].text == "My name is Alice and I live in Lyon."
