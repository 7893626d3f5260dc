"""A record's ``embedding_text`` is what a store embeds (blended with its ``embedding_context``);
its ``text`` is indexed and shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from threadline import ChatMessage, ConversationMemory, MemoryRecord, MemoryScope, Role
from threadline.memory import MemoryStore
from threadline.memory.stores import Fusion, SQLiteMemoryStore
from threadline.memory.stores._common import CONTEXT_WEIGHT, embed_records
from threadline.memory.stores.postgres import PostgresMemoryStore


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
    # Each message is embedded once, alone; the short one's record names the message before it
    # as context, which costs nothing more: it is the same text as that message's own.
    assert embedder.texts == [
        "Where is the glacier lagoon we talked about?",
        long_answer.strip(),
        "Yes, that was great!",
    ]
    await store.aclose()


class TopicEmbedder:
    """A toy embedder with one dimension per topic word, so a vector says what a text is about."""

    topics = ("glacier", "great", "recipe")
    dimension = 3
    name = "topics"

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [self._vector(text.lower()) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [float(t in text) + 1e-3 for t in self.topics]
        # Recipes mention ice now and then: slightly nearer "glacier" than an unrelated text, so
        # without its context "Yes, that was great!" would rank below the recipe.
        vector[0] += 0.05 * ("recipe" in text)
        return vector


@pytest.fixture(params=["sqlite", "postgres"])
def store_by_vectors(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryStore:
    """Each shipped store, ranking by vectors alone (the blending under test is shared)."""
    fusion = Fusion(lexical_weight=0.0)
    if request.param == "sqlite":
        return SQLiteMemoryStore(tmp_path / "m.db", embedder=TopicEmbedder(), fusion=fusion)
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return PostgresMemoryStore(url, schema=schema, embedder=TopicEmbedder(), fusion=fusion)


async def test_a_short_turn_is_found_by_the_topic_of_the_turn_before_it(
    store_by_vectors: MemoryStore,
) -> None:
    store = store_by_vectors
    memory = ConversationMemory(store)
    reply = ChatMessage(Role.USER, "Yes, that was great!")
    await memory.ingest(
        [
            ChatMessage(Role.ASSISTANT, "Did you see the glacier lagoon on your trip?"),
            reply,
            ChatMessage(Role.ASSISTANT, "Here is a recipe idea for tonight."),
        ],
        user_id="ada",
        thread_id="thread_1",
    )
    hits = await memory.recall("glacier", user_id="ada", limit=3)
    # By vectors alone: the question, then the reply about it, then the unrelated recipe.
    assert [h.message_ids[-1] for h in hits][1] == reply.message_id
    assert "recipe" in hits[2].text
    await store.aclose()


async def test_blending_embeds_every_distinct_text_once(tmp_path: Path) -> None:
    import numpy as np

    embedder = TopicEmbedder()
    scope = MemoryScope(user_id="ada")
    records = [
        MemoryRecord(kind="turn", text="t1", embedding_text="glacier", scope=scope),
        MemoryRecord(
            kind="turn", text="t2", embedding_text="great", embedding_context="glacier", scope=scope
        ),
        MemoryRecord(
            kind="turn", text="t3", embedding_text="great", embedding_context="recipe", scope=scope
        ),
    ]
    vectors = [np.frombuffer(v, dtype=np.float32) for v in await embed_records(embedder, records)]
    assert embedder.texts == ["glacier", "great", "recipe"]
    own = np.asarray([1e-3, 1.001, 1e-3])
    context = np.asarray([1.001, 1e-3, 1e-3])
    expected = own / np.linalg.norm(own) + CONTEXT_WEIGHT * context / np.linalg.norm(context)
    np.testing.assert_allclose(vectors[1], expected / np.linalg.norm(expected), rtol=1e-5)
    assert abs(float(np.linalg.norm(vectors[2])) - 1.0) < 1e-5
    assert not np.allclose(vectors[1], vectors[2])
