"""A record's ``embedding_text`` is what a store embeds; its ``text`` is indexed and shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from threadline import ChatMessage, ConversationMemory, MemoryRecord, MemoryScope, Role
from threadline.memory.stores import SQLiteMemoryStore


class RecordingEmbedder:
    """Any vector will do here: the test is about which texts reach the embedder."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    @property
    def dimension(self) -> int:
        return 2

    @property
    def name(self) -> str:
        return "recording"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [[1.0, 0.0] for _ in texts]


async def test_the_store_embeds_embedding_text_and_keeps_text(tmp_path: Path) -> None:
    embedder = RecordingEmbedder()
    store = SQLiteMemoryStore(tmp_path / "m.db", embedder=embedder)
    scope = MemoryScope(user_id="ada")
    record = MemoryRecord(
        kind="turn", text="[Monday]\nuser: I hiked", embedding_text="user: I hiked", scope=scope
    )
    await store.add([record])
    assert embedder.texts == ["user: I hiked"]
    stored = await store.get(record.id, scope=scope)
    assert stored is not None and stored.text == "[Monday]\nuser: I hiked"
    await store.aclose()


async def test_conversation_memory_embeds_messages_without_the_date_line(tmp_path: Path) -> None:
    embedder = RecordingEmbedder()
    store = SQLiteMemoryStore(tmp_path / "m.db", embedder=embedder)
    memory = ConversationMemory(store, embedder=embedder)
    long_answer = "The glacier lagoon is in the south-east of Iceland, near the ring road. " * 2
    await memory.ingest(
        [
            ChatMessage(Role.USER, "Where is the glacier lagoon we talked about?"),
            ChatMessage(Role.ASSISTANT, long_answer),
            ChatMessage(Role.USER, "Yes, that was great!"),
        ],
        user_id="ada",
        thread_id="thread_1",
    )
    assert not any("Conversation of" in t for t in embedder.texts)
    # A long message is embedded alone; a short one with the turn before it, to say what it is.
    assert embedder.texts[1] == f"assistant: {long_answer.strip()}"
    assert embedder.texts[2].startswith("assistant: The glacier lagoon")
    assert embedder.texts[2].endswith("user: Yes, that was great!")
    await store.aclose()
