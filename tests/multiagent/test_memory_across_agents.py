"""Context providers at the runner and at each agent; user data only for the agents allowed it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    Context,
    ContextProvider,
    GroupChat,
    Handoff,
    Role,
    ScriptedChatClient,
    SequentialProcess,
    UsageError,
)

SECRET = "Alice is allergic to pine"


class UserFacts(ContextProvider):
    """Remembers the user across threads: user data."""

    holds_user_data = True

    def __init__(self, fact: str = SECRET, *, state_key: str | None = None) -> None:
        super().__init__(state_key=state_key)
        self.fact = fact
        self.consulted_for: list[str | None] = []

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        self.consulted_for.append(thread.binding.agent_name if thread.binding else None)
        return Context(
            instructions=f"Known about the user: {self.fact}",
            messages=[ChatMessage(Role.USER, f"(memory) {self.fact}")],
        )


class Clock(ContextProvider):
    """Adds the time: not user data, so everyone gets it."""

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        return Context(instructions="It is noon.")


def everything_sent(client: ScriptedChatClient) -> str:
    return "\n".join(m.text for call in client.calls for m in call.messages)


async def test_a_group_chat_consults_user_data_only_for_allowed_participants() -> None:
    clients = {n: ScriptedChatClient([f"{n} here."]) for n in ("host", "guest", "critic")}
    own = UserFacts("Alice lives in Oslo", state_key="guest_facts")
    agents = [
        ChatAgent(clients["host"], name="host"),
        ChatAgent(clients["guest"], name="guest", context_providers=[own]),
        ChatAgent(clients["critic"], name="critic"),
    ]
    facts = UserFacts()
    chat = GroupChat(
        agents, max_rounds=3, context_providers=[facts, Clock()], allow_user_data=["host"]
    )
    await chat.run("Plan a dinner.")
    assert SECRET in everything_sent(clients["host"])
    for name in ("guest", "critic"):
        sent = everything_sent(clients[name])
        assert SECRET not in sent and "(memory)" not in sent and "Oslo" not in sent, name
        assert "It is noon." in sent  # providers without user data still serve everyone
    assert "It is noon." in everything_sent(clients["host"])
    assert facts.consulted_for == ["host"]
    assert own.consulted_for == []  # not even its own agent's, once the runner disallows it


async def test_by_default_every_group_chat_participant_is_allowed() -> None:
    clients = {n: ScriptedChatClient([f"{n} here."]) for n in ("a", "b")}
    agents = [ChatAgent(c, name=n) for n, c in clients.items()]
    await GroupChat(agents, max_rounds=2, context_providers=[UserFacts()]).run("Hi.")
    assert all(SECRET in everything_sent(c) for c in clients.values())


async def test_processes_allow_user_data_only_to_the_agents_listed() -> None:
    clients = {n: ScriptedChatClient([f"{n} done."]) for n in ("drafter", "publisher")}
    agents = [ChatAgent(c, name=n) for n, c in clients.items()]
    await SequentialProcess(agents, context_providers=[UserFacts()]).run("Go.")
    assert all(SECRET not in everything_sent(c) for c in clients.values())

    clients = {n: ScriptedChatClient([f"{n} done."]) for n in ("drafter", "publisher")}
    agents = [ChatAgent(c, name=n) for n, c in clients.items()]
    process = SequentialProcess(
        agents, context_providers=[UserFacts()], allow_user_data=["publisher"]
    )
    await process.run("Go.")
    assert SECRET not in everything_sent(clients["drafter"])
    assert SECRET in everything_sent(clients["publisher"])

    own = UserFacts(state_key="mine")
    client = ScriptedChatClient(["Hello."])
    await Handoff([ChatAgent(client, name="front", context_providers=[own])]).run("Hi.")
    assert SECRET not in everything_sent(client) and own.consulted_for == []


def test_allow_user_data_must_name_participants() -> None:
    agents = [ChatAgent(ScriptedChatClient([]), name="a")]
    with pytest.raises(UsageError, match="allow_user_data names \\['zed'\\]"):
        GroupChat(agents, allow_user_data=["zed"])
