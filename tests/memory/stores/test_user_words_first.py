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


# -- the named speaker's own words first ---------------------------------------------------------
# Two people talk; a question naming one of them is mostly answered by that person's own words,
# while the other's replies repeat the subject (and the name) more often.
_SMALL_TALK = [
    "Morning! Did you see the match last night?",
    "I did, what a finish. The referee was awful though.",
    "The bakery on our street closed for the winter.",
    "Shame, their rye bread was the best in town.",
    "My sister moves to Lisbon in May for a new job.",
    "Lisbon is lovely in spring, she will enjoy it.",
    "I started learning the cello, my neighbours are patient.",
    "Brave neighbours! I am still stuck on my guitar chords.",
]
TWO_PEOPLE = [
    *(
        ChatMessage(Role.USER, text, author_name=("Carl", "Bea")[i % 2])
        for i, text in enumerate(_SMALL_TALK)
    ),
    ChatMessage(Role.USER, "Fine, thanks. How is your garden?", author_name="Bea"),
    ChatMessage(Role.USER, "The tomatoes finally came up. Any news?", author_name="Carl"),
    ChatMessage(Role.USER, "I've had my turtles for three years now.", author_name="Bea"),
    ChatMessage(Role.USER, "Three years with turtles, Bea? Wow, good for you!", author_name="Carl"),
]


@pytest.fixture(params=["sqlite", "postgres"])
def lexical_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, MiniLMEmbedder | None, str | None]:
    """Both durable stores without an embedder: in a chat this small, standardised cosine scores
    swing by whole units, and the ranking rule under test is the stores' shared one."""
    if request.param == "sqlite":
        return str(tmp_path / "memory.db"), None, None
    return request.getfixturevalue("postgres_url"), None, request.getfixturevalue("postgres_schema")


async def _recall_two_people(
    where: tuple[str, MiniLMEmbedder | None, str | None],
    opened: list[MemoryStore],
    fusion: Fusion,
) -> list[str]:
    store = _store(where, fusion)
    opened.append(store)
    memory = ConversationMemory(store)
    messages = [
        ChatMessage(m.role, m.text, author_name=m.author_name, message_id=f"m{i}")
        for i, m in enumerate(TWO_PEOPLE)
    ]
    await memory.ingest(messages, user_id="bea", thread_id="t1", occurred_at=datetime(2024, 3, 1))
    hits = await memory.recall("How long has Bea had her turtles?", user_id="bea", limit=4)
    return [h.message_ids[-1] for h in hits]


async def test_a_question_naming_a_speaker_puts_their_own_words_first(
    lexical_store: tuple[str, MiniLMEmbedder | None, str | None],
    memory_of: list[MemoryStore],
) -> None:
    order = await _recall_two_people(lexical_store, memory_of, Fusion())
    assert order[0] == "m10", order


async def test_without_the_bonus_the_other_speakers_echo_wins(
    lexical_store: tuple[str, MiniLMEmbedder | None, str | None],
    memory_of: list[MemoryStore],
) -> None:
    """What the bonus fixes: Carl's reply, holding Bea's words and saying one again, wins."""
    order = await _recall_two_people(lexical_store, memory_of, Fusion(named_speaker_bonus=0.0))
    assert order[0] == "m11", order


def test_the_bonus_must_be_a_finite_number_at_least_zero() -> None:
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="named_speaker_bonus"):
            Fusion(named_speaker_bonus=bad)
