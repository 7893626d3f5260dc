"""What a thread is bound to, and the errors for using it where it does not belong."""

from __future__ import annotations

import pytest

from tests._helpers import store_of
from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessageList,
    IncompatibleThreadError,
    ScriptedChatClient,
    UsageError,
)


def test_a_thread_is_never_both_service_and_local() -> None:
    with pytest.raises(UsageError, match="never both"):
        AgentThread(service_thread_id="conv_1", message_store=ChatMessageList())
    local = AgentThread(message_store=ChatMessageList())
    with pytest.raises(UsageError, match="cannot also take service_thread_id 'conv_9'"):
        local.service_thread_id = "conv_9"
    service = AgentThread(service_thread_id="conv_1")
    with pytest.raises(UsageError, match="cannot also take a message store"):
        service.message_store = ChatMessageList()
    assert service.message_store is None and local.service_thread_id is None


async def test_service_thread_with_local_history_agent_fails_before_any_call() -> None:
    service_client = ScriptedChatClient(["hi"], service_threads=True)
    service_agent = ChatAgent(service_client)
    thread = (await service_agent.run("hello")).thread
    assert thread is not None and thread.service_thread_id == "conv_1"

    local_client = ScriptedChatClient(["never sent"])
    local_agent = ChatAgent(local_client, name="local")
    with pytest.raises(IncompatibleThreadError, match="keeps history locally"):
        await local_agent.run("again", thread=thread)
    with pytest.raises(IncompatibleThreadError):
        async for _ in local_agent.run_stream("again", thread=thread):
            pass
    assert local_client.calls == []
    # The refused thread is untouched and still works where it belongs.
    assert thread.service_thread_id == "conv_1" and thread.message_store is None


async def test_thread_of_another_service_is_refused() -> None:
    first = ChatAgent(ScriptedChatClient(["hi"], service_threads=True, service_name="svc-a"))
    thread = (await first.run("hello")).thread
    assert thread is not None
    other_client = ScriptedChatClient(["x"], service_threads=True, service_name="svc-b")
    with pytest.raises(IncompatibleThreadError, match="belongs to service 'svc-a'"):
        await ChatAgent(other_client).run("again", thread=thread)
    assert other_client.calls == []
    # Deserializing it with the wrong agent is refused as early.
    with pytest.raises(IncompatibleThreadError):
        await ChatAgent(other_client).deserialize_thread(await thread.serialize())


async def test_local_thread_with_service_agent_is_refused() -> None:
    thread = ChatAgent(ScriptedChatClient([])).get_new_thread()
    service_client = ScriptedChatClient(["x"], service_threads=True)
    with pytest.raises(IncompatibleThreadError, match="keeps its messages locally"):
        await ChatAgent(service_client).run("hi", thread=thread)
    assert service_client.calls == []


async def test_local_threads_are_portable_between_local_agents() -> None:
    first_client = ScriptedChatClient(["I am first"])
    second_client = ScriptedChatClient(["I am second"])
    first = ChatAgent(first_client, name="first")
    second = ChatAgent(second_client, name="second")
    thread = first.get_new_thread()
    await first.run("hi first", thread=thread)
    await second.run("hi second", thread=thread)
    history = await store_of(thread).list_messages()
    assert [(m.author_name, m.text) for m in history] == [
        (None, "hi first"),
        ("first", "I am first"),
        (None, "hi second"),
        ("second", "I am second"),
    ]
    # Two agents on the same service share its threads.
    svc = ScriptedChatClient(["a", "b"], service_threads=True)
    thread = (await ChatAgent(svc).run("one")).thread
    await ChatAgent(svc).run("two", thread=thread)
    assert [m.text for m in svc.conversations["conv_1"]] == ["one", "a", "two", "b"]


async def test_an_unbound_thread_binds_on_first_use() -> None:
    thread = AgentThread()
    assert not thread.is_initialized
    svc = ScriptedChatClient(["hi"], service_threads=True)
    await ChatAgent(svc).run("hello", thread=thread)
    assert thread.service_thread_id == "conv_1" and thread.binding is not None
    assert thread.binding.service == "scripted"

    local = AgentThread()
    await ChatAgent(ScriptedChatClient(["hi"])).run("hello", thread=local)
    assert isinstance(local.message_store, ChatMessageList)


def test_get_new_thread_refuses_a_service_id_for_a_local_agent() -> None:
    with pytest.raises(UsageError, match="no use for service_thread_id"):
        ChatAgent(ScriptedChatClient([])).get_new_thread(service_thread_id="conv_1")
