from __future__ import annotations

import pytest

from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    ContextProvider,
    Role,
    ScriptedChatClient,
    UsageError,
)


async def test_add_chat_message_stores_without_a_model_call() -> None:
    client = ScriptedChatClient(["I saw it."])
    agent = ChatAgent(client, name="critic")
    thread = await agent.add_chat_message(
        ChatMessage(Role.USER, "Slogan: bark lamps glow.", author_name="writer")
    )
    assert client.calls == []
    stored = await thread.message_store.list_messages()  # type: ignore[union-attr]
    assert [(m.role, m.text, m.author_name) for m in stored] == [
        (Role.USER, "Slogan: bark lamps glow.", "writer")
    ]
    await agent.run("What did the writer say?", thread=thread)
    assert [m.text for m in client.calls[0].messages] == [
        "Slogan: bark lamps glow.",
        "What did the writer say?",
    ]


async def test_add_chat_message_posts_to_a_service_conversation() -> None:
    client = ScriptedChatClient(["Seen."], service_threads=True)
    agent = ChatAgent(client, name="remote")
    thread = await agent.add_chat_message(ChatMessage(Role.USER, "hello", author_name="bob"))
    assert client.calls == []
    assert thread.service_thread_id is not None
    assert [m.text for m in client.conversations[thread.service_thread_id]] == ["hello"]
    await agent.run("and now?", thread=thread)
    assert [m.text for m in client.calls[0].messages] == ["hello", "and now?"]


async def test_user_id_is_saved_and_restored() -> None:
    agent = ChatAgent(ScriptedChatClient(["hi"]))
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("hello", thread=thread)
    state = await thread.serialize()
    assert state["user_id"] == "alice"
    restored = await agent.deserialize_thread(state)
    assert restored.user_id == "alice"
    assert (await thread.fork()).user_id == "alice"
    with pytest.raises(UsageError, match="user_id"):
        AgentThread(user_id="")


async def test_version_1_states_migrate_to_anonymous_threads() -> None:
    agent = ChatAgent(ScriptedChatClient(["hi"]))
    thread = agent.get_new_thread()
    await agent.run("hello", thread=thread)
    state = await thread.serialize()
    del state["user_id"]
    state["schema_version"] = 1
    restored = await agent.deserialize_thread(state)
    assert restored.user_id is None
    assert len(await restored.message_store.list_messages()) == 2  # type: ignore[union-attr]


def test_two_providers_of_one_class_with_their_own_state_keys() -> None:
    class Facts(ContextProvider):
        pass

    agent = ChatAgent(
        ScriptedChatClient([]),
        context_providers=[Facts(state_key="work"), Facts(state_key="home")],
    )
    assert [p.state_key for p in agent.context_providers] == ["work", "home"]
    with pytest.raises(UsageError, match="state_key="):
        ChatAgent(ScriptedChatClient([]), context_providers=[Facts(), Facts()])
    assert Facts().state_key == "Facts"
    assert Facts.holds_user_data is False
