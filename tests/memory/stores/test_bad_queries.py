"""Bad input on the ranking paths: a clear ``UsageError`` or a sane result, never a crash.

Every query below goes through ``ConversationMemory.recall`` on SQLite and PostgreSQL, lexically
and with the real embedder, in a memory where another user stored the same words: a hit is only
ever the asking user's, and its score is a finite number. The fusion's degenerate cases (one
candidate, all scores equal, a score that is not a number) are checked on ``fuse`` itself.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from threadline import ChatMessage, Role, UsageError
from threadline.memory import ConversationMemory, MemoryStore
from threadline.memory.embedders import MiniLMEmbedder
from threadline.memory.stores import Fusion, PostgresMemoryStore, SQLiteMemoryStore
from threadline.memory.stores._ranking import fuse

WHEN = datetime(2024, 3, 1, tzinfo=UTC)

REFUSED = {
    "empty": "",
    "blank": " \n\t ",
    "over-long": "peanuts " * 600,
    "lone surrogate": "peanuts \ud800",
}
"""Refused with a ``UsageError`` that names the problem."""

SANE = {
    "stop words only": "what did I tell you about the",
    "punctuation only": "?!... --- ;;",
    "one letter": "I",
    "quotes": '"peanuts"',
    "unbalanced quote": '"peanuts',
    "NEAR": "NEAR(peanuts allergic)",
    "prefix star": "peanut*",
    "lone star": "*",
    "parentheses": "(peanuts OR porto)",
    "boolean words": "NOT peanuts AND OR",
    "column filter": "text: peanuts",
    "owner column filter": 'owner : "peanuts" OR text',
    "column set": "{text owner}: peanuts",
    "caret and minus": "^peanuts -porto",
    "tsquery syntax": "peanuts & !porto | allerg:*",
    "NUL": "peanuts\x00",
    "emoji": "💥🥜",
    "just under the limit": "p" * 3_999,
}
"""Answered with hits of the asking user only (possibly none), each with a finite score."""


@pytest.fixture(params=["sqlite", "sqlite+minilm", "postgres", "postgres+minilm"])
async def memory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ConversationMemory]:
    """A memory where ada and bob said the same things."""
    kind, _, embedding = str(request.param).partition("+")
    embedder: MiniLMEmbedder | None = request.getfixturevalue("minilm") if embedding else None
    store: MemoryStore
    if kind == "sqlite":
        store = SQLiteMemoryStore(tmp_path / "memory.db", embedder=embedder)
    else:
        store = PostgresMemoryStore(
            request.getfixturevalue("postgres_url"),
            schema=request.getfixturevalue("postgres_schema"),
            embedder=embedder,
        )
    memory = ConversationMemory(store)
    for user in ("ada", "bob"):
        await memory.ingest(
            [
                ChatMessage(Role.USER, f"I'm {user}, allergic to peanuts.", message_id=f"{user}1"),
                ChatMessage(Role.USER, "I live in Porto.", message_id=f"{user}2"),
            ],
            user_id=user,
            thread_id=f"{user}-thread",
            occurred_at=WHEN,
        )
    yield memory
    await store.aclose()


@pytest.mark.parametrize("query", REFUSED.values(), ids=REFUSED.keys())
async def test_a_bad_query_is_refused_with_a_usage_error(
    memory: ConversationMemory, query: str
) -> None:
    with pytest.raises(UsageError, match="search query"):
        await memory.recall(query, user_id="ada")


@pytest.mark.parametrize("query", SANE.values(), ids=SANE.keys())
async def test_an_odd_query_gets_a_sane_answer_of_the_user_only(
    memory: ConversationMemory, query: str
) -> None:
    hits = await memory.recall(query, user_id="ada", limit=5)
    assert len(hits) <= 5
    for hit in hits:
        assert hit.record.scope.user_id == "ada"
        assert hit.thread_id == "ada-thread"
        assert "bob" not in hit.text
        assert math.isfinite(hit.score)


async def test_fts_syntax_cannot_reach_another_users_index(memory: ConversationMemory) -> None:
    """Words are quoted one by one: a column filter or operator in a query is just words."""
    for query in ("owner : bob", "bob", '"bob1"', "text : bob OR owner : ada"):
        hits = await memory.recall(query, user_id="ada")
        assert all(h.record.scope.user_id == "ada" and "bob" not in h.text for h in hits)


def _fused(lexical: list[tuple[str, float]], vector: list[tuple[str, float]]) -> dict[str, float]:
    ids = {m for m, _ in lexical} | {m for m, _ in vector}
    ranked = fuse(
        lexical=lexical, vector=vector, when=dict.fromkeys(ids, WHEN), window=None, fusion=Fusion()
    )
    return dict(ranked)


@pytest.mark.parametrize(
    ("lexical", "vector"),
    [
        ([("a", 3.0)], []),
        ([], [("a", 0.4)]),
        ([("a", 3.0)], [("a", 0.4)]),
        ([("a", 2.0), ("b", 2.0), ("c", 2.0)], [("a", 0.5), ("b", 0.5), ("c", 0.5)]),
        ([("a", 0.0), ("b", 0.0)], [("a", 0.0), ("b", 0.0)]),
        ([("a", math.nan), ("b", 1.0)], [("a", math.inf), ("b", -math.inf)]),
        ([("a", 1e308), ("b", -1e308)], [("a", 1.0), ("b", -1.0)]),
    ],
    ids=["one lexical", "one vector", "one in both", "all equal", "all zero", "nan inf", "huge"],
)
def test_degenerate_scores_never_give_nan(
    lexical: list[tuple[str, float]], vector: list[tuple[str, float]]
) -> None:
    scores = _fused(lexical, vector)
    assert scores
    assert all(math.isfinite(s) for s in scores.values()), scores


def test_equal_candidates_tie_rather_than_vanish() -> None:
    scores = _fused([("a", 2.0), ("b", 2.0)], [])
    assert abs(scores["a"] - scores["b"]) < 0.01
    assert scores["a"] > 0.5
