"""The user's own words outrank an assistant reply that repeats them (issue 21 item 3).

A turn is indexed with the two messages before it, so an assistant reply echoing the user
("Noted: you're allergic to peanuts") holds the user's words twice, and so does the user's next
message ("Thanks!"), whose context holds both. Full-text search alone ranks either above the
user's statement, even with a low ``assistant_weight``. Driven through ``ConversationMemory``'s
public ``ingest``/``recall`` on the durable stores, lexically and with the real embedder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from threadline import ChatMessage, Role
from threadline.memory import ConversationMemory, MemoryStore
from threadline.memory.embedders import MiniLMEmbedder
from threadline.memory.stores import Fusion, PostgresMemoryStore, SQLiteMemoryStore

CHAT = [
    ChatMessage(Role.USER, "Hi there, how are you today?", message_id="u0"),
    ChatMessage(Role.ASSISTANT, "I'm well, thank you. How can I help?", message_id="a0"),
    ChatMessage(
        Role.USER,
        "I'm vegetarian and I live in Porto, and I'm allergic to peanuts.",
        message_id="u1",
    ),
    ChatMessage(
        Role.ASSISTANT,
        "Noted: you're vegetarian, you live in Porto and you're allergic to peanuts.",
        message_id="a1",
    ),
    ChatMessage(Role.USER, "Thanks! Any dessert idea?", message_id="u2"),
    ChatMessage(
        Role.ASSISTANT, "A coconut panna cotta: no nuts, no gelatine needed.", message_id="a2"
    ),
]


@pytest.fixture(params=["sqlite", "sqlite+minilm", "postgres", "postgres+minilm"])
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, MiniLMEmbedder | None, str | None]]:
    """Which store, with which embedder (each test opens it with its own ``Fusion``)."""
    kind, _, embedding = str(request.param).partition("+")
    embedder: MiniLMEmbedder | None = request.getfixturevalue("minilm") if embedding else None
    if kind == "sqlite":
        yield str(tmp_path / "memory.db"), embedder, None
    else:
        yield (
            request.getfixturevalue("postgres_url"),
            embedder,
            request.getfixturevalue("postgres_schema"),
        )


def _store(where: tuple[str, MiniLMEmbedder | None, str | None], fusion: Fusion) -> MemoryStore:
    path, embedder, schema = where
    if schema is None:
        return SQLiteMemoryStore(path, embedder=embedder, fusion=fusion)
    return PostgresMemoryStore(path, schema=schema, embedder=embedder, fusion=fusion)


@pytest.fixture
async def memory_of() -> AsyncIterator[list[MemoryStore]]:
    """The stores a test opened, closed after it."""
    opened: list[MemoryStore] = []
    yield opened
    for store in opened:
        await store.aclose()


async def _recall(
    where: tuple[str, MiniLMEmbedder | None, str | None],
    opened: list[MemoryStore],
    query: str,
    fusion: Fusion,
) -> list[str]:
    store = _store(where, fusion)
    opened.append(store)
    memory = ConversationMemory(store)
    await memory.ingest(CHAT, user_id="ada", thread_id="t1", occurred_at=datetime(2024, 3, 1))
    await memory.ingest(
        [ChatMessage(Role.USER, "I'm allergic to peanuts too.", message_id="b1")],
        user_id="bob",
        thread_id="t9",
        occurred_at=datetime(2024, 3, 1),
    )
    hits = await memory.recall(query, user_id="ada", limit=6)
    assert all(h.record.scope.user_id == "ada" for h in hits)
    return [h.message_ids[-1] for h in hits]


@pytest.mark.parametrize(
    "query", ["Am I allergic to peanuts?", "Where do I live?", "Am I vegetarian?"]
)
async def test_the_users_statement_ranks_above_the_reply_repeating_it(
    open_store: tuple[str, MiniLMEmbedder | None, str | None],
    memory_of: list[MemoryStore],
    query: str,
) -> None:
    order = await _recall(open_store, memory_of, query, Fusion(assistant_weight=0.5))
    assert order[0] == "u1", order
    assert order.index("u1") < order.index("a1")


async def test_without_the_rule_the_echo_wins(
    open_store: tuple[str, MiniLMEmbedder | None, str | None],
    memory_of: list[MemoryStore],
) -> None:
    """What the rule fixes: the windows holding the echo outrank the statement without it."""
    order = await _recall(
        open_store,
        memory_of,
        "Am I allergic to peanuts?",
        Fusion(assistant_weight=0.5, user_words_first=False),
    )
    assert order[0] != "u1", order


async def test_a_reply_that_adds_the_answer_keeps_its_place(
    open_store: tuple[str, MiniLMEmbedder | None, str | None],
    memory_of: list[MemoryStore],
) -> None:
    """An assistant reply saying query words the user did not say is an answer, not an echo."""
    order = await _recall(open_store, memory_of, "which coconut dessert?", Fusion())
    assert order[0] == "a2", order
