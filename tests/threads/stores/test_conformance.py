"""Every shipped store passes the public conformance kit, against real SQLite, Redis, PostgreSQL."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests._sqlite_sql import KEYED_OF_THREAD, OF_THREAD, make_keyed_file
from threadline.testing.store_conformance import StoreConformance, StoreHarness
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.memory import ChatMessageList
from threadline.threads.stores.postgres import PostgresChatMessageStore
from threadline.threads.stores.redis import RedisChatMessageStore
from threadline.threads.stores.sqlite import SQLiteChatMessageStore


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    async def store_harness(self) -> StoreHarness:
        async def new_store() -> ChatMessageStore:
            return ChatMessageList()

        return StoreHarness(
            new_store=new_store,
            factory=ChatMessageList,
            corrupt_skip_reason=(
                "the memory store keeps live message objects, never encoded records, so there is "
                "nothing at rest to corrupt; malformed state is refused by load_state instead"
            ),
            cross_process_skip_reason=(
                "an in-memory thread lives in one process and cannot be shared with another"
            ),
        )


async def _corrupt_sqlite(store: ChatMessageStore, n: int, of_thread: str = OF_THREAD) -> None:
    assert isinstance(store, SQLiteChatMessageStore)
    conn = sqlite3.connect(store.path)
    try:
        with conn:
            changed = conn.execute(
                f"UPDATE threadline_messages SET body = ? WHERE {of_thread} AND seq = ?",
                (b'{"role": "user", "contents": [', store.thread_id, n),
            ).rowcount
        assert changed == 1
    finally:
        conn.close()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    async def store_harness(self, tmp_path: Path) -> StoreHarness:
        path = tmp_path / "threads.db"

        async def new_store() -> ChatMessageStore:
            return SQLiteChatMessageStore(path)

        return StoreHarness(
            new_store=new_store,
            factory=functools.partial(SQLiteChatMessageStore, path),
            corrupt_record=_corrupt_sqlite,
        )


class TestSQLiteStoreInAFileFromBefore(StoreConformance):
    """A file made before the log layout (keyed messages, 2 KB pages) keeps every promise."""

    @pytest.fixture
    async def store_harness(self, tmp_path: Path) -> AsyncIterator[StoreHarness]:
        path = tmp_path / "threads.db"
        make_keyed_file(path)

        async def new_store() -> ChatMessageStore:
            return SQLiteChatMessageStore(path)

        yield StoreHarness(
            new_store=new_store,
            factory=functools.partial(SQLiteChatMessageStore, path),
            corrupt_record=functools.partial(_corrupt_sqlite, of_thread=KEYED_OF_THREAD),
        )
        with contextlib.closing(sqlite3.connect(path)) as conn:  # still the keyed layout
            columns = {row[1] for row in conn.execute("PRAGMA table_info(threadline_messages)")}
            assert "thread_id" in columns and "thread" not in columns
            assert conn.execute("PRAGMA page_size").fetchone() == (2048,)


async def _corrupt_redis(store: ChatMessageStore, n: int) -> None:
    assert isinstance(store, RedisChatMessageStore)
    key = f"{store.key_prefix}{store.thread_id}:m"
    await store._client.lset(key, n - 1, b"\xff not a record")  # pyright: ignore[reportArgumentType]


class TestRedisStore(StoreConformance):
    @pytest.fixture
    async def store_harness(self, redis_url: str, redis_prefix: str) -> StoreHarness:
        async def new_store() -> ChatMessageStore:
            return RedisChatMessageStore(url=redis_url, key_prefix=redis_prefix)

        return StoreHarness(
            new_store=new_store,
            factory=functools.partial(
                RedisChatMessageStore, url=redis_url, key_prefix=redis_prefix
            ),
            corrupt_record=_corrupt_redis,
        )


async def _corrupt_postgres(store: ChatMessageStore, n: int) -> None:
    assert isinstance(store, PostgresChatMessageStore)
    async with store._pool.connection() as conn:
        await conn.execute(
            f'UPDATE "{store.schema}".threadline_messages SET body = %s '
            "WHERE thread_id = %s AND seq = %s",
            (b"\x00\x01garbage", store.thread_id, n),
        )


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    async def store_harness(
        self, postgres_url: str, postgres_schema: str
    ) -> AsyncIterator[StoreHarness]:
        async def new_store() -> ChatMessageStore:
            return PostgresChatMessageStore(dsn=postgres_url, schema=postgres_schema)

        yield StoreHarness(
            new_store=new_store,
            factory=functools.partial(
                PostgresChatMessageStore, dsn=postgres_url, schema=postgres_schema
            ),
            corrupt_record=_corrupt_postgres,
        )
