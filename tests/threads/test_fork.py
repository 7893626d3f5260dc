"""thread.fork(): independent branches, without copying the history."""

from __future__ import annotations

import pytest

from tests._helpers import store_of
from threadline import ChatAgent, ChatMessage, ChatMessageList, Role, ScriptedChatClient, UsageError
from threadline.threads.thread import AgentThread


async def texts(thread: AgentThread) -> list[str]:
    assert thread.message_store is not None
    return [m.text for m in await thread.message_store.list_messages()]


async def test_local_fork_is_an_independent_branch() -> None:
    agent = ChatAgent(ScriptedChatClient(["a1", "main 2", "branch 2"]))
    thread = agent.get_new_thread()
    await agent.run("one", thread=thread)
    thread.context_state["Memo"] = {"facts": ["x"]}
    branch = await thread.fork()
    await agent.run("main", thread=thread)
    await agent.run("branch", thread=branch)
    assert await texts(thread) == ["one", "a1", "main", "main 2"]
    assert await texts(branch) == ["one", "a1", "branch", "branch 2"]
    assert branch.id != thread.id
    branch.context_state["Memo"]["facts"].append("y")
    assert thread.context_state["Memo"] == {"facts": ["x"]}
    # Forks of forks stay independent too.
    leaf = await branch.fork()
    await store_of(leaf).add_messages([ChatMessage(Role.USER, "leaf")])
    assert (await texts(leaf))[-1] == "leaf" and (await texts(branch))[-1] == "branch 2"


async def test_forking_a_long_thread_shares_rather_than_copies() -> None:
    store = ChatMessageList([ChatMessage(Role.USER, f"m{i}") for i in range(10_000)])
    thread = AgentThread(message_store=store)
    branch = await thread.fork()
    child = branch.message_store
    assert isinstance(child, ChatMessageList)
    # The branch owns no messages of its own: it reads its parent's list up to the fork point.
    assert child._own == [] and child._shared[0][0] is store._own
    await store.add_messages([ChatMessage(Role.USER, "parent only")])
    assert len(child) == 10_000 and len(store) == 10_001
    assert (await child.list_messages())[-1].text == "m9999"


async def test_service_thread_fork_branches_the_conversation() -> None:
    client = ScriptedChatClient(["a", "b-main", "b-branch"], service_threads=True)
    agent = ChatAgent(client)
    thread = (await agent.run("one")).thread
    assert thread is not None
    branch = await thread.fork()
    assert branch.service_thread_id not in (None, thread.service_thread_id)
    await agent.run("main", thread=thread)
    await agent.run("branch", thread=branch)
    assert [m.text for m in client.conversations[thread.service_thread_id or ""]] == [
        "one",
        "a",
        "main",
        "b-main",
    ]
    assert [m.text for m in client.conversations[branch.service_thread_id or ""]] == [
        "one",
        "a",
        "branch",
        "b-branch",
    ]


async def test_fork_of_a_service_thread_without_a_forking_client_is_refused() -> None:
    thread = AgentThread(service_thread_id="conv_1")
    with pytest.raises(UsageError, match="cannot branch conversations"):
        await thread.fork()
