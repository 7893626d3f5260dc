"""Every sample of spec/multi-turn-threads.md, run against threadline.

The spec's samples use Foundry and other paid services; here their clients are swapped for
``ScriptedChatClient`` (no paid service is reachable from tests), once as a client that keeps
history locally and once as a service that keeps it itself (``service_threads=True``).
"""

from __future__ import annotations

import json

import pytest

from tests._helpers import store_of
from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessageList,
    ScriptedChatClient,
)

SERVICE_MODES = [pytest.param(False, id="local-history"), pytest.param(True, id="service-threads")]


@pytest.mark.parametrize("service_threads", SERVICE_MODES)
async def test_thread_creation(service_threads: bool) -> None:
    """### AgentThread Creation: a new thread, and a throwaway one."""
    client = ScriptedChatClient(["Fine, thanks.", "Hello!"], service_threads=service_threads)
    agent = ChatAgent(chat_client=client, instructions="You are a helpful assistant")

    # Create a new thread.
    thread = agent.get_new_thread()
    # Run the agent with the thread.
    response = await agent.run("Hello, how are you?", thread=thread)
    assert response.text == "Fine, thanks."
    assert response.thread is thread

    # Run an agent with a temporary thread.
    response = await agent.run("Hello, how are you?")
    assert response.text == "Hello!"
    assert response.thread is not None and response.thread is not thread
    # The temporary thread saw only its own turn.
    assert [m.text for m in client.calls[1].messages] == [
        "You are a helpful assistant",
        "Hello, how are you?",
    ]
    client.assert_all_replies_used()


@pytest.mark.parametrize("service_threads", SERVICE_MODES)
async def test_thread_storage(service_threads: bool) -> None:
    """### AgentThread Storage: serialize, store as JSON, deserialize, continue."""
    client = ScriptedChatClient(["Fine.", "Still fine."], service_threads=service_threads)
    agent = ChatAgent(chat_client=client, instructions="You are a helpful assistant")

    # Create a new thread.
    thread = agent.get_new_thread()
    # Run the agent with the thread.
    response = await agent.run("Hello, how are you?", thread=thread)

    # Serialize the thread for storage.
    serialized_thread = await thread.serialize()
    stored = json.dumps(serialized_thread)  # it really is plain JSON
    # Deserialize the thread state after loading from storage.
    resumed_thread = await agent.deserialize_thread(json.loads(stored))

    # Run the agent with the resumed thread.
    response = await agent.run("Hello, how are you?", thread=resumed_thread)
    assert response.text == "Still fine."
    assert [m.text for m in client.calls[1].messages] == [
        "You are a helpful assistant",
        "Hello, how are you?",
        "Fine.",
        "Hello, how are you?",
    ]
    if service_threads:
        # "the serialized AgentThread will contain an id of the thread in the service"
        assert serialized_thread["store"] is None
        assert serialized_thread["service_thread_id"] == client.calls[0].options.get(
            "conversation_id", "conv_1"
        )
        assert "Hello" not in stored
    else:
        # "the serialized AgentThread will contain the messages themselves"
        assert serialized_thread["service_thread_id"] is None
        assert [m["text"] for m in serialized_thread["store"]["state"]["messages"]] == [
            "Hello, how are you?",
            "Fine.",
        ]


async def test_custom_message_stores() -> None:
    """### Custom Message Stores: explicit store, agent-made store, and a store factory."""
    # Using the default in-memory message store
    thread = AgentThread(message_store=ChatMessageList())
    client = ScriptedChatClient(["one", "two", "three"])

    # Or let the agent create one automatically
    plain_agent = ChatAgent(chat_client=client, instructions="You are a helpful assistant")
    auto = plain_agent.get_new_thread()
    assert isinstance(auto.message_store, ChatMessageList)

    made: list[ChatMessageList] = []

    # You can also provide a custom message store factory when creating the agent
    def custom_message_store_factory() -> ChatMessageList:
        store = ChatMessageList()  # or your custom implementation
        made.append(store)
        return store

    async with ChatAgent(
        chat_client=client,
        instructions="You are a helpful assistant",
        chat_message_store_factory=custom_message_store_factory,
    ) as agent:
        await agent.run("hi", thread=thread)
        assert [m.text for m in await store_of(thread).list_messages()] == ["hi", "one"]
        factory_thread = agent.get_new_thread()
        assert made and factory_thread.message_store is made[0]
        await agent.run("hello", thread=factory_thread)
        assert [m.text for m in await made[0].list_messages()] == ["hello", "two"]


async def test_agents_are_stateless_across_threads() -> None:
    """## Agent/AgentThread relationship: one agent instance, several threads."""
    client = ScriptedChatClient(["a1", "b1", "a2"])
    agent = ChatAgent(chat_client=client)
    thread_a, thread_b = agent.get_new_thread(), agent.get_new_thread()
    await agent.run("to a", thread=thread_a)
    await agent.run("to b", thread=thread_b)
    await agent.run("again a", thread=thread_a)
    assert [m.text for m in client.calls[2].messages] == ["to a", "a1", "again a"]


@pytest.mark.parametrize("service_threads", SERVICE_MODES)
async def test_practical_multi_turn_example(service_threads: bool) -> None:
    """## Practical Multi-Turn Example, with the model's replies scripted."""
    client = ScriptedChatClient(
        ["Nice to meet you, Alice.", "Your name is Alice.", "We talked about your name."],
        service_threads=service_threads,
    )
    async with ChatAgent(chat_client=client, instructions="You are a helpful assistant") as agent:
        # Create a thread for persistent conversation
        thread = agent.get_new_thread()

        # First interaction
        response1 = await agent.run("My name is Alice", thread=thread)
        assert response1.text == "Nice to meet you, Alice."

        # Second interaction - agent remembers the name
        response2 = await agent.run("What's my name?", thread=thread)
        assert "Alice" in response2.text

        # Serialize thread for storage
        serialized = await thread.serialize()

        # Later, deserialize and continue conversation
        new_thread = await agent.deserialize_thread(serialized)
        response3 = await agent.run("What did we talk about?", thread=new_thread)
        assert response3.text == "We talked about your name."

    second_turn_input = [m.text for m in client.calls[1].messages]
    assert "My name is Alice" in second_turn_input
    assert second_turn_input[0] == "You are a helpful assistant"
    # The resumed thread carries the whole history to the model.
    assert [m.text for m in client.calls[2].messages] == [
        "You are a helpful assistant",
        "My name is Alice",
        "Nice to meet you, Alice.",
        "What's my name?",
        "Your name is Alice.",
        "What did we talk about?",
    ]
    if service_threads:
        # Only the new message went over the wire: the service kept the rest.
        assert [m.text for m in client.calls[2].sent] == [
            "You are a helpful assistant",
            "What did we talk about?",
        ]
    client.assert_all_replies_used()
