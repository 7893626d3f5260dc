"""A user's ranking must not depend on what other users stored (issue 20, item 12).

Full-text ranking weighs a word by how rare it is; if rarity is counted over every user of a
store, what user A stores reorders user B's own results: a side channel across users. PostgreSQL's
``ts_rank`` weighs each document alone; the SQLite store, with ``per_user_statistics=True`` (as
``threadline serve`` opens it), computes BM25 from the user's own statistics, kept per user by
triggers, which the last tests check through writes, deletes, forgets and an older file. FTS5's
``bm25()`` (the default, for files of one user) counts rarity over every user, and fails this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.memory.store import MemoryStore
from threadline.memory.stores import PostgresMemoryStore, SQLiteMemoryStore
from threadline.memory.stores._common import owner_token

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


@pytest.fixture(params=["sqlite", "postgres"])
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
            store = SQLiteMemoryStore(
                tmp_path / f"{name}.db", embedder=None, per_user_statistics=True
            )
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


def _owner_stats(path: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT owner, records, chars FROM memory_owner_stats").fetchall()
    return {owner: (records, chars) for owner, records, chars in rows}


def _counted(path: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT owner, count(*), sum(length(text)) FROM memories GROUP BY owner"
        ).fetchall()
    return {owner: (records, chars) for owner, records, chars in rows}


async def test_fts5s_own_statistics_are_why_the_option_exists(tmp_path: Path) -> None:
    """Without ``per_user_statistics`` the file-wide rarity does reorder Bob's results."""
    changed: list[bool] = []
    for per_user in (False, True):
        orders: list[list[list[str]]] = []
        for name in ("alone", "shared"):
            store = SQLiteMemoryStore(
                tmp_path / f"{name}-{per_user}.db", embedder=None, per_user_statistics=per_user
            )
            await store.add(
                [
                    MemoryRecord(kind="fact", text=t, scope=BOB, id=f"b{i}")
                    for i, t in enumerate(BOBS)
                ]
            )
            if name == "shared":
                await store.add(
                    [
                        MemoryRecord(kind="fact", text=f"mango garden {i}", scope=ALICE)
                        for i in range(200)
                    ]
                )
            orders.append([[h.id for h in await store.search(q, scope=BOB)] for q in QUERIES])
            await store.aclose()
        changed.append(orders[0] != orders[1])
    assert changed == [True, False]


async def test_sqlite_keeps_each_users_statistics_exact_through_every_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    async with SQLiteMemoryStore(path, embedder=None) as store:
        await store.add(
            [MemoryRecord(kind="fact", text=t, scope=BOB, id=f"b{i}") for i, t in enumerate(BOBS)]
        )
        await store.add([MemoryRecord(kind="fact", text="mango " * i, scope=ALICE) for i in (1, 5)])
        # Replacing a record's text, deleting one, forgetting a user: the counts follow.
        await store.add(
            [MemoryRecord(kind="fact", text="a much longer text now", scope=BOB, id="b0")]
        )
        assert await store.delete(["b1"], scope=BOB) == 1
        assert _owner_stats(path) == _counted(path)
        assert len(_owner_stats(path)) == 2
        await store.forget(user_id="alice")
        # A forgotten user leaves no row behind (not even the hashed owner token).
        assert (
            _owner_stats(path)
            == _counted(path)
            == {owner_token("bob"): _counted(path)[owner_token("bob")]}
        )


async def test_sqlite_counts_the_statistics_of_a_file_written_before_them(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with SQLiteMemoryStore(path, embedder=None, per_user_statistics=True) as store:
        await store.add(
            [MemoryRecord(kind="fact", text=t, scope=BOB, id=f"b{i}") for i, t in enumerate(BOBS)]
        )
        before = [h.id for h in await store.search("mango papaya", scope=BOB)]
    # What a file of the previous version looks like: no statistics, no triggers, no flag.
    with sqlite3.connect(path) as conn:
        for trigger in ("memories_stats_ai", "memories_stats_ad", "memories_stats_au"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE memory_owner_stats")
        conn.execute("DELETE FROM memory_meta WHERE key = 'owner_stats'")
    async with SQLiteMemoryStore(path, embedder=None, per_user_statistics=True) as store:
        assert [h.id for h in await store.search("mango papaya", scope=BOB)] == before
        await store.add([MemoryRecord(kind="fact", text="mango again", scope=BOB)])
    assert _owner_stats(path) == _counted(path)
