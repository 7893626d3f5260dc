"""Small helpers shared by tests."""

from __future__ import annotations

from threadline import AgentThread, ChatMessageStore


def store_of(thread: AgentThread | None) -> ChatMessageStore:
    """The thread's message store; fails the test if the thread is not local."""
    assert thread is not None and thread.message_store is not None, "expected a local thread"
    return thread.message_store


async def texts(thread: AgentThread | None) -> list[str]:
    """The text of every message the thread holds, oldest first."""
    return [m.text for m in await store_of(thread).list_messages()]
