"""A user's ranking must not depend on what other users stored (issue 20, item 12).

Full-text ranking weighs a word by how rare it is; if rarity is counted over every user of a
store, what user A stores reorders user B's own results: a side channel across users. PostgreSQL's
``ts_rank`` weighs each document alone and holds; SQLite's FTS5 ``bm25()`` does not yet (strict
xfail: it turns into a failure the day the ranking is fixed, and the mark must then go).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.memory.store import MemoryStore
from threadline.memory.stores import PostgresMemoryStore, SQLiteMemoryStore

ALICE, BOB = MemoryScope(user_id="alice"), MemoryScope(user_id="bob")
BOBS = [
    "we planted mango trees and a papaya in the garden",
    "the papaya was ripe, the mango not yet",
    "bought mango chutney at the market on Sunday",
    "papaya salad with lime for dinner",
    "the garden needs water every morning in summer",
    "lime and mango sorbet at the beach",
]
QUERIES = ["mango papaya", "garden mango", "lime papaya salad", "papaya", "mango market lime"]


_NOT_FIXED = pytest.mark.xfail(
    strict=True,
    reason="issue 20 item 12, not fixed yet: SQLite's FTS5 counts word rarity over all users",
)


@pytest.fixture(params=[pytest.param("sqlite", marks=_NOT_FIXED), "postgres"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[str], MemoryStore]]:
    """Makes a fresh store (its own file or schema) per name."""
    made: list[MemoryStore] = []
    url = schema = ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")

    def make(name: str) -> MemoryStore:
        store: MemoryStore
        if request.param == "sqlite":
            store = SQLiteMemoryStore(tmp_path / f"{name}.db", embedder=None)
        else:
            store = PostgresMemoryStore(url, schema=f"{schema}_{name}")
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()
    if request.param == "postgres":
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, autocommit=True) as conn:
            for name in ("alone", "shared"):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        sql.Identifier(f"{schema}_{name}")
                    )
                )


async def test_bobs_ranking_is_the_same_whatever_alice_stored(
    stores: Callable[[str], MemoryStore],
) -> None:
    alone, shared = stores("alone"), stores("shared")
    for store in (alone, shared):
        await store.add(
            [MemoryRecord(kind="fact", text=t, scope=BOB, id=f"b{i}") for i, t in enumerate(BOBS)]
        )
    # Alice talks about mango and the garden a lot: common words for her, rare for Bob.
    await shared.add(
        [MemoryRecord(kind="fact", text=f"mango garden note {i}", scope=ALICE) for i in range(200)]
    )
    for query in QUERIES:
        mine = [h.id for h in await alone.search(query, scope=BOB)]
        with_alice = [h.id for h in await shared.search(query, scope=BOB)]
        assert with_alice == mine, query
