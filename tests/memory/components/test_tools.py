"""The memory tools as a model uses them: remember, recall and forget, confined to one user."""

from __future__ import annotations

import json

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    ScriptedChatClient,
)
from threadline.memory.conversation import ConversationMemory
from threadline.memory.preferences import UserPreferencesMemory
from threadline.memory.records import MemoryScope
from threadline.memory.store import MemoryStore


def call(name: str, call_id: str, **arguments: str) -> list[FunctionCallContent]:
    return [FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))]


def tool_results(client: ScriptedChatClient) -> list[str]:
    """Every tool result the model was sent, in order (each call's new ones)."""
    seen: dict[str, str] = {}
    for recorded in client.calls:
        for message in recorded.messages:
            if message.role != Role.TOOL:
                continue
            for content in message.contents:
                if isinstance(content, FunctionResultContent):
                    seen[content.call_id] = str(content.result)
    return list(seen.values())


async def test_the_model_remembers_recalls_and_forgets(store: MemoryStore) -> None:
    memory = UserPreferencesMemory(store)
    client = ScriptedChatClient(
        [
            call("remember", "c1", fact="The user's bike is a green Gazelle."),
            "Remembered.",
            call("recall", "c2", query="bike"),
            "You ride a green Gazelle.",
        ]
    )
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("Remember my bike is a green Gazelle.", thread=thread)
    [record] = await store.list(scope=MemoryScope(user_id="alice"))
    assert record.text == "The user's bike is a green Gazelle."
    assert {t.name for t in client.calls[0].options.get("tools", [])} >= {
        "remember",
        "recall",
        "forget",
    }

    await agent.run("Which bike do I have?", thread=agent.get_new_thread(user_id="alice"))
    results = tool_results(client)
    assert results[0] == f"Remembered as {record.id}."
    assert record.id in results[1] and "Gazelle" in results[1]

    client.add_replies(call("forget", "c3", memory_id=record.id), "Forgotten.")
    await agent.run("Forget my bike.", thread=thread)
    assert await store.list(scope=MemoryScope(user_id="alice")) == []
    assert tool_results(client)[-1] == f"Forgot {record.id}."


async def test_a_user_cannot_forget_or_recall_another_users_memory(store: MemoryStore) -> None:
    memory = UserPreferencesMemory(store)
    bob_client = ScriptedChatClient([call("remember", "b1", fact="Bob's PIN is 9911."), "ok"])
    bob = ChatAgent(bob_client, context_providers=memory)
    await bob.run("Remember my PIN 9911.", thread=bob.get_new_thread(user_id="bob"))
    [bobs] = await store.list(scope=MemoryScope(user_id="bob"))

    client = ScriptedChatClient(
        [call("forget", "a1", memory_id=bobs.id), call("recall", "a2", query="PIN 9911"), "No."]
    )
    agent = ChatAgent(client, context_providers=memory)
    await agent.run("Forget that PIN.", thread=agent.get_new_thread(user_id="alice"))
    forget_result, recall_result = tool_results(client)
    assert forget_result == f"No memory {bobs.id!r} of this user exists; nothing was forgotten."
    assert recall_result == "Nothing relevant is remembered."
    assert await store.get(bobs.id, scope=MemoryScope(user_id="bob")) == bobs


async def test_remembering_the_same_fact_twice_keeps_one(store: MemoryStore) -> None:
    memory = ConversationMemory(store, tools=True)
    client = ScriptedChatClient(
        [
            call("remember", "c1", fact="The user likes jazz."),
            call("remember", "c2", fact="the user likes jazz."),
            "ok",
        ]
    )
    agent = ChatAgent(client, context_providers=memory)
    await agent.run("I like jazz, remember it.", thread=agent.get_new_thread(user_id="alice"))
    facts = await store.list(scope=MemoryScope(user_id="alice"), kinds=["fact"])
    assert [f.text for f in facts] == ["The user likes jazz."]
    assert tool_results(client)[1] == f"Already remembered as {facts[0].id}."
