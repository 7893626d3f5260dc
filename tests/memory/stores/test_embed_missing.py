"""Memories stored before semantic search was installed get their vectors later (issue 21).

A file written without an embedder (the ``memory`` extra missing) holds records without vectors;
opened again with the real MiniLM embedder, they are found by their words only until
``embed_missing`` gives them vectors. Run on SQLite and PostgreSQL, and through the CLI
(``threadline memory reindex``, and ``memory search``, which embeds them by itself).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from threadline.cli.main import main
from threadline.cli.memory_cmd import MEMORY_FILE
from threadline.exceptions import UsageError
from threadline.memory import MemoryRecord, MemoryScope, SQLiteMemoryStore
from threadline.memory.embedders import MiniLMEmbedder
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.stores._common import EMBED_MISSING_BATCH
from threadline.memory.stores.postgres import PostgresMemoryStore

USER = MemoryScope(user_id="ada")
DIET = "I never eat meat or fish, only vegetables."
QUERY = "vegetarian"  # shares no word with DIET: only its vector can find it
FILLER = [f"The meeting number {n} moved to room {n + 3} on floor {n % 5}." for n in range(70)]
"""More records than one batch, so ``embed_missing`` works through several."""


def records() -> list[MemoryRecord]:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    texts = [DIET, *FILLER]
    return [MemoryRecord(kind="fact", text=t, scope=USER, occurred_at=when) for t in texts]


OpenStore = Callable[[Embedder | None], MemoryStore]


@asynccontextmanager
async def sqlite_stores(request: pytest.FixtureRequest) -> AsyncGenerator[OpenStore]:
    path: Path = request.getfixturevalue("tmp_path") / "memory.db"
    yield lambda made_with: SQLiteMemoryStore(path, embedder=made_with)
    with sqlite3.connect(path) as conn:  # what the file itself holds at the end
        assert conn.execute("SELECT count(*) FROM memories WHERE vector IS NULL").fetchone() == (0,)


@asynccontextmanager
async def postgres_stores(request: pytest.FixtureRequest) -> AsyncGenerator[OpenStore]:
    url: str = request.getfixturevalue("postgres_url")  # fails, never skips, under CI
    schema = f"tl_embed_{uuid.uuid4().hex[:10]}"
    try:
        yield lambda made_with: PostgresMemoryStore(url, schema=schema, embedder=made_with)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


STORES = {"sqlite": sqlite_stores, "postgresql": postgres_stores}


@pytest.mark.parametrize("kind", sorted(STORES))
async def test_records_stored_without_vectors_are_found_by_meaning_once_embedded(
    kind: str, request: pytest.FixtureRequest, minilm: MiniLMEmbedder
) -> None:
    async with STORES[kind](request) as open_store:
        lexical = open_store(None)
        await lexical.add(records())
        await lexical.aclose()

        store = open_store(minilm)
        try:
            before = await store.search(QUERY, scope=USER, limit=3)
            assert DIET not in [hit.record.text for hit in before]

            seen: list[tuple[int, int]] = []
            assert isinstance(store, SQLiteMemoryStore | PostgresMemoryStore)
            embed_missing = store.embed_missing
            count = await embed_missing(progress=lambda done, total: seen.append((done, total)))
            assert count == len(FILLER) + 1
            assert len(seen) > 1 and seen[0][0] == EMBED_MISSING_BATCH
            assert seen[-1] == (count, count)

            after = await store.search(QUERY, scope=USER, limit=3)
            assert after and after[0].record.text == DIET
            assert await embed_missing() == 0  # nothing left: a second run does nothing
        finally:
            await store.aclose()


async def test_without_an_embedder_there_is_nothing_to_embed_with(tmp_path: Path) -> None:
    async with SQLiteMemoryStore(tmp_path / "m.db", embedder=None) as store:
        await store.add(records()[:1])
        with pytest.raises(UsageError, match="no embedder"):
            await store.embed_missing()


def remember_without_vectors(home: Path) -> None:
    async def save() -> None:
        async with SQLiteMemoryStore(home / MEMORY_FILE, embedder=None) as store:
            await store.add(records())

    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(save())


def test_memory_reindex_embeds_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remember_without_vectors(tmp_path)
    assert main(["--home", str(tmp_path), "memory", "reindex"]) == 0
    out, err = capsys.readouterr()
    total = len(FILLER) + 1
    assert f"embedded {total} memories" in out
    assert f"{total}/{total}" in err  # the progress line
    assert "embedder=" not in out + err  # commands never give code advice

    assert main(["--home", str(tmp_path), "memory", "reindex"]) == 0
    assert "every memory already has a vector" in capsys.readouterr().out

    assert main(["--home", str(tmp_path), "memory", "search", QUERY, "--user", "ada"]) == 0
    assert DIET in capsys.readouterr().out.splitlines()[0]


def test_memory_search_embeds_older_memories_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remember_without_vectors(tmp_path)
    assert main(["--home", str(tmp_path), "memory", "search", QUERY, "--user", "ada"]) == 0
    out, err = capsys.readouterr()
    assert DIET in out.splitlines()[0]
    assert "stored before semantic search" in err
