"""``open_memory_store``: one way to open memory, for the command, the server and applications."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline import ChatAgent, ScriptedChatClient, UsageError
from threadline.cli.serve_cmd import with_memory
from threadline.memory import (
    ConversationMemory,
    MemoryRecord,
    MemoryScope,
    MiniLMEmbedder,
    PostgresMemoryStore,
    SQLiteMemoryStore,
    open_memory_store,
)

ADA = MemoryScope(user_id="ada")


async def test_a_path_opens_sqlite_with_the_default_embedder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "memory.sqlite3"
    store = open_memory_store(path)
    try:
        assert isinstance(store, SQLiteMemoryStore)
        assert isinstance(store.embedder, MiniLMEmbedder)
        await store.add([MemoryRecord(kind="fact", text="Ada keeps bees.", scope=ADA)])
        hits = await store.search("which insects does she look after?", scope=ADA)
        assert [h.text for h in hits] == ["Ada keeps bees."]  # found by meaning: vectors are on
    finally:
        await store.aclose()
    assert path.exists()


async def test_a_postgres_url_opens_a_shared_store(postgres_url: str, postgres_schema: str) -> None:
    store = open_memory_store(postgres_url, postgres_schema=postgres_schema)
    other = open_memory_store(postgres_url, postgres_schema=postgres_schema)  # another server
    try:
        assert isinstance(store, PostgresMemoryStore)
        assert isinstance(store.embedder, MiniLMEmbedder)
        await store.add([MemoryRecord(kind="fact", text="Ada keeps bees.", scope=ADA)])
        hits = await other.search("bees", scope=ADA)
        assert [h.text for h in hits] == ["Ada keeps bees."]
        assert await other.search("bees", scope=MemoryScope(user_id="bob")) == []
    finally:
        await store.aclose()
        await other.aclose()


def test_an_empty_spec_is_refused() -> None:
    with pytest.raises(UsageError, match="spec is empty"):
        open_memory_store("  ")


def test_serve_memory_opens_memory_as_chat_does(tmp_path: Path) -> None:
    # 'serve --memory' used to get no embedder: its search was silently lexical only.
    served = with_memory(ChatAgent(ScriptedChatClient([])), str(tmp_path / "m.sqlite3"))
    memory = next(p for p in served.context_providers if isinstance(p, ConversationMemory))
    assert isinstance(memory.store, SQLiteMemoryStore)
    assert isinstance(memory.store.embedder, MiniLMEmbedder)
