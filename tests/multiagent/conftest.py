"""Scripted three-agent casts shared by the multi-agent tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from threadline import AgentThread, ChatAgent, ChatMessage, ScriptedChatClient
from threadline.clients.scripted import ScriptedReply


def cast(
    scripts: Mapping[str, Sequence[ScriptedReply]],
    *,
    clients: dict[str, ScriptedChatClient] | None = None,
) -> tuple[list[ChatAgent], dict[str, ScriptedChatClient]]:
    """Agents named after the script keys, each answering from its own scripted client.

    Passing ``clients`` reuses them (the "model" outlives the process), with new agent objects.
    """
    clients = clients or {name: ScriptedChatClient(replies) for name, replies in scripts.items()}
    agents = [
        ChatAgent(clients[name], f"You are {name}.", name=name, id=f"agent_{name}")
        for name in scripts
    ]
    return agents, clients


def shape(messages: Sequence[ChatMessage]) -> list[tuple[str, str | None, str]]:
    """(role, author, text) of each message: what the tests compare, ids aside."""
    return [(m.role.value, m.author_name, m.text) for m in messages]


async def thread_shape(thread: AgentThread) -> list[tuple[str, str | None, str]]:
    assert thread.message_store is not None
    return shape(await thread.message_store.list_messages())
