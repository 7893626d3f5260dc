"""Threads that use both memory components survive serialize/deserialize without duplicates."""

from __future__ import annotations

import json

from threadline import ChatAgent, ScriptedChatClient
from threadline.memory import ConversationMemory, MemoryScope, UserPreferencesMemory
from threadline.memory.store import MemoryStore


async def test_a_thread_with_both_components_round_trips_through_json(store: MemoryStore) -> None:
    extractor = ScriptedChatClient(
        [
            json.dumps(
                {"facts": [{"subject": "pet", "fact": "The user has a cat.", "kind": "fact"}]}
            ),
            json.dumps({"facts": []}),
        ]
    )
    conversation = ConversationMemory(store)
    preferences = UserPreferencesMemory(store, extractor=extractor)
    client = ScriptedChatClient(["Cute!", "Sure."])
    agent = ChatAgent(client, context_providers=[conversation, preferences])
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("I have a cat called Miso.", thread=thread)

    saved = json.loads(json.dumps(await thread.serialize()))  # really JSON
    assert saved["user_id"] == "alice"
    assert set(saved["context_providers"]) == {"ConversationMemory", "UserPreferencesMemory"}
    restored = await agent.deserialize_thread(saved)
    await agent.run("My cat likes tuna.", thread=restored)
    await restored.end()

    scope = MemoryScope(user_id="alice")
    turns = await store.list(scope=scope, kinds=["turn"])
    assert len(turns) == 4 == len({t.message_ids[-1] for t in turns})
    assert [f.text for f in await store.list(scope=scope, kinds=["fact"])] == [
        "The user has a cat."
    ]
    assert len(extractor.calls) == 2  # once per user message, never again after the restore
    assert "The user has a cat." in client.calls[-1].messages[0].text
    assert len(await store.list(scope=scope, kinds=["summary"])) == 1
