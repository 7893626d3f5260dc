"""``threadline serve`` with memory: each API key's account, and each ``user`` of it, apart.

A real server on a loopback port, driven by the official ``openai`` client; the model is scripted.
"""

from __future__ import annotations

from pathlib import Path

from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, Role, ScriptedChatClient
from threadline.cli.serve_cmd import with_memory
from threadline.hosting import ServerConfig
from threadline.hosting._runner import memory_user_id
from threadline.memory import (
    ConversationMemory,
    ExtractedFact,
    SQLiteMemoryStore,
    UserPreferencesMemory,
)


async def test_memories_are_scoped_per_api_key_and_per_request_user(tmp_path: Path) -> None:
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    preferences = UserPreferencesMemory(store, tools=False)
    for owner, fact in [
        (memory_user_id("alice", None), "The caller likes tea."),
        (memory_user_id("alice", "u1"), "The caller likes coffee."),
        (memory_user_id("bob", None), "The caller likes mate."),
    ]:
        await preferences.add_facts([ExtractedFact("drink", fact, "preference")], user_id=owner)
    model = ScriptedChatClient(["a", "b", "c"])
    agent = ChatAgent(model, "Test agent.", context_providers=preferences)
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    uv, task, url = await start_server(agent, config)
    try:
        import openai

        for key, user in [("key-alice", None), ("key-alice", "u1"), ("key-bob", None)]:
            async with openai.AsyncOpenAI(base_url=url, api_key=key) as client:
                extra = {"user": user} if user else {}
                await client.chat.completions.create(
                    model="threadline",
                    messages=[{"role": "user", "content": "What should I drink?"}],
                    **extra,  # type: ignore[arg-type]
                )
    finally:
        uv.should_exit = True
        await task
        await store.aclose()
    systems = [c.messages[0].text for c in model.calls]
    assert all(c.messages[0].role == Role.SYSTEM for c in model.calls)
    assert "tea" in systems[0] and "coffee" not in systems[0] and "mate" not in systems[0]
    assert "coffee" in systems[1] and "tea" not in systems[1]
    assert "mate" in systems[2] and "tea" not in systems[2]


def test_memory_owner_ids_cannot_collide() -> None:
    assert memory_user_id("a/b", "c") != memory_user_id("a", "b/c")
    assert memory_user_id("alice", None) == "alice"
    assert memory_user_id("alice", "") == "alice"


async def test_serve_memory_adds_both_components_and_keeps_the_agent(tmp_path: Path) -> None:
    model = ScriptedChatClient([])
    agent = ChatAgent(model, "Keep me.", name="helper")
    served = with_memory(agent, str(tmp_path / "memory.sqlite3"))
    assert served.instructions == "Keep me." and served.name == "helper" and served.id == agent.id
    kinds = [type(p) for p in served.context_providers]
    assert kinds == [ConversationMemory, UserPreferencesMemory]
    assert all(p.holds_user_data for p in served.context_providers)
    for provider in served.context_providers:
        await provider.aclose()  # type: ignore[attr-defined]
