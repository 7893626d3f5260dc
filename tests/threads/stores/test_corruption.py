"""Corrupt data at rest is a ``StoreError`` naming the thread: never a hang, never a TypeError.

Each store's rows are damaged directly in its real database (SQLite file, Redis, PostgreSQL), the
way a hand edit, another program or a bad restore would, then read and written through the store
and through an agent. Every read is bounded by a timeout so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql

from tests._sqlite_sql import OF_THREAD
from threadline import ChatAgent, ScriptedChatClient
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.postgres import PostgresChatMessageStore
from threadline.threads.stores.redis import RedisChatMessageStore
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.threads.thread import AgentThread
from threadline.types import ChatMessage, Role

TIMEOUT = 20.0


def turn(text: str) -> list[ChatMessage]:
    return [ChatMessage(Role.USER, text), ChatMessage(Role.ASSISTANT, f"re: {text}")]


@dataclass
class Backend:
    """One store kind and raw access to its data, to damage it."""

    open: Callable[[str], ChatMessageStore]
    set_parent: Callable[[str, str, int], Awaitable[None]]
    """(thread, parent, fork point): point a thread's fork parent somewhere."""
    set_version: Callable[[str, Any], Awaitable[None]]
    drop_last_row: Callable[[str], Awaitable[None]]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "threads.db"

        def sql_exec(query: str, *args: Any) -> None:
            conn = sqlite3.connect(path)
            try:
                with conn:
                    conn.execute(query, args)
            finally:
                conn.close()

        async def sqlite_parent(tid: str, parent: str, fork: int) -> None:
            sql_exec(
                "UPDATE threadline_threads SET parent_id = ?, fork_version = ? WHERE thread_id = ?",
                parent,
                fork,
                tid,
            )

        async def sqlite_version(tid: str, version: Any) -> None:
            sql_exec("UPDATE threadline_threads SET version = ? WHERE thread_id = ?", version, tid)

        async def sqlite_drop(tid: str) -> None:
            sql_exec(
                f"DELETE FROM threadline_messages WHERE {OF_THREAD} AND seq = "
                f"(SELECT max(seq) FROM threadline_messages WHERE {OF_THREAD})",
                tid,
                tid,
            )

        yield Backend(
            lambda tid: SQLiteChatMessageStore(path, thread_id=tid),
            sqlite_parent,
            sqlite_version,
            sqlite_drop,
        )
    elif request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        raw = aioredis.Redis.from_url(url)  # pyright: ignore[reportUnknownMemberType]
        stores: list[RedisChatMessageStore] = []

        def open_redis(tid: str) -> ChatMessageStore:
            store = RedisChatMessageStore(url=url, key_prefix=prefix, thread_id=tid)
            stores.append(store)
            return store

        async def redis_parent(tid: str, parent: str, fork: int) -> None:
            await raw.hset(f"{prefix}{tid}:h", mapping={"parent": parent, "fork": fork})

        async def redis_version(tid: str, version: Any) -> None:
            await raw.hset(f"{prefix}{tid}:h", "version", version)

        async def redis_drop(tid: str) -> None:
            await raw.rpop(f"{prefix}{tid}:m")
            await raw.rpop(f"{prefix}{tid}:t")

        try:
            yield Backend(open_redis, redis_parent, redis_version, redis_drop)
        finally:
            for store in stores:
                await store.aclose()
            await raw.aclose()
    else:
        dsn: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        pg_stores: list[PostgresChatMessageStore] = []
        threads = sql.Identifier(schema, "threadline_threads")
        messages = sql.Identifier(schema, "threadline_messages")

        def open_pg(tid: str) -> ChatMessageStore:
            store = PostgresChatMessageStore(dsn=dsn, schema=schema, thread_id=tid)
            pg_stores.append(store)
            return store

        async def pg_exec(query: sql.Composed, *args: Any) -> None:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute(query, args)

        async def pg_parent(tid: str, parent: str, fork: int) -> None:
            await pg_exec(
                sql.SQL(
                    "UPDATE {} SET parent_id = %s, fork_version = %s WHERE thread_id = %s"
                ).format(threads),
                parent,
                fork,
                tid,
            )

        async def pg_version(tid: str, version: Any) -> None:
            await pg_exec(
                sql.SQL("UPDATE {} SET version = %s WHERE thread_id = %s").format(threads),
                version,
                tid,
            )

        async def pg_drop(tid: str) -> None:
            await pg_exec(
                sql.SQL(
                    "DELETE FROM {m} WHERE thread_id = %s AND seq = "
                    "(SELECT max(seq) FROM {m} WHERE thread_id = %s)"
                ).format(m=messages),
                tid,
                tid,
            )

        try:
            yield Backend(open_pg, pg_parent, pg_version, pg_drop)
        finally:
            for store in pg_stores:
                await store.aclose()


async def _thread_with_fork(backend: Backend) -> tuple[str, str]:
    parent = backend.open("thread_parent")
    await parent.add_messages(turn("one"), expected_version=0)
    child = await parent.fork()
    await child.add_messages(turn("two"), expected_version=2)
    if isinstance(child, RedisChatMessageStore | PostgresChatMessageStore):
        await child.aclose()  # it shares the parent's connection, closed with the backend
    return "thread_parent", str(getattr(child, "thread_id"))  # noqa: B009


async def _refused(store: ChatMessageStore, thread_id: str, *, budget: bool = True) -> str:
    """Both reads fail fast with a StoreError naming ``thread_id``; returns the message."""
    with pytest.raises(StoreError) as info:
        await asyncio.wait_for(store.list_messages(), TIMEOUT)
    assert not isinstance(info.value, ConcurrentThreadUpdateError)
    assert repr(thread_id) in str(info.value)
    if budget:
        with pytest.raises(StoreError, match=thread_id):
            await asyncio.wait_for(store.list_messages(max_tokens=10_000), TIMEOUT)
    return str(info.value)


async def _agent_refuses(
    store: ChatMessageStore, thread_id: str, *, found_on_write: bool = False
) -> None:
    """An agent's turn fails with a StoreError naming the thread; nothing is written.

    ``found_on_write``: the damage lies past what a read touches (rows beyond the version), so
    the turn only meets it when it appends its answer, after the model call.
    """
    client = ScriptedChatClient(["answered" if found_on_write else "never sent"])
    agent = ChatAgent(client)
    thread = AgentThread(message_store=store, thread_id=thread_id)
    with pytest.raises(StoreError, match=thread_id) as info:
        await asyncio.wait_for(agent.run("hello", thread=thread), TIMEOUT)
    assert not isinstance(info.value, ConcurrentThreadUpdateError)
    if found_on_write:
        assert "hello" not in [m.text for m in await store.list_messages()]
    else:
        assert client.calls == []  # the model was never called on a history known to be wrong


async def test_fork_parent_pointing_at_itself(backend: Backend) -> None:
    _, child = await _thread_with_fork(backend)
    await backend.set_parent(child, child, 2)
    message = await _refused(backend.open(child), child)
    assert "loop" in message
    await _agent_refuses(backend.open(child), child)


async def test_two_thread_fork_cycle(backend: Backend) -> None:
    parent, child = await _thread_with_fork(backend)
    await backend.set_parent(parent, child, 1)
    assert "loop" in await _refused(backend.open(child), child)
    assert "loop" in await _refused(backend.open(parent), parent)
    await _agent_refuses(backend.open(child), child)


async def test_self_parented_thread_can_still_be_deleted(backend: Backend) -> None:
    _, child = await _thread_with_fork(backend)
    await backend.set_parent(child, child, 2)
    store = backend.open(child)
    await asyncio.wait_for(store.delete(), TIMEOUT)
    assert await backend.open(child).list_messages() == []


async def test_version_above_the_stored_messages(backend: Backend) -> None:
    store = backend.open("thread_short")
    await store.add_messages(turn("one") + turn("two"), expected_version=0)
    await backend.drop_last_row("thread_short")  # version 4, three rows
    message = await _refused(backend.open("thread_short"), "thread_short", budget=False)
    assert "version says 4 messages" in message
    # Before: every turn failed with ConcurrentThreadUpdateError, forever.
    await _agent_refuses(backend.open("thread_short"), "thread_short")


async def test_version_below_the_stored_messages(backend: Backend) -> None:
    store = backend.open("thread_long")
    await store.add_messages(turn("one") + turn("two"), expected_version=0)
    await backend.set_version("thread_long", 2)  # version 2, four rows
    fresh = backend.open("thread_long")
    assert [m.text for m in await fresh.list_messages()] == ["one", "re: one"]
    with pytest.raises(StoreError, match="thread_long") as info:
        await fresh.add_messages(turn("three"), expected_version=2)
    assert not isinstance(info.value, ConcurrentThreadUpdateError)
    assert "past its version" in str(info.value) or "version says 2" in str(info.value)
    await _agent_refuses(backend.open("thread_long"), "thread_long", found_on_write=True)


async def test_missing_fork_ancestor(backend: Backend) -> None:
    _, child = await _thread_with_fork(backend)
    await backend.set_parent(child, "thread_gone", 2)
    await _refused(backend.open(child), child)
    await _agent_refuses(backend.open(child), child)


# -- SQLite keeps any type in any column: values of the wrong type are caught ------------------


async def test_sqlite_version_stored_as_text(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    await SQLiteChatMessageStore(path, thread_id="thread_t").add_messages(turn("one"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE threadline_threads SET version = 'two' WHERE thread_id = 'thread_t'")
    conn.close()
    message = await _refused(SQLiteChatMessageStore(path, thread_id="thread_t"), "thread_t")
    assert "version is 'two'" in message
    with pytest.raises(StoreError, match="version is 'two'"):
        await SQLiteChatMessageStore(path, thread_id="thread_t").add_messages(turn("x"))
    await _agent_refuses(SQLiteChatMessageStore(path, thread_id="thread_t"), "thread_t")


async def test_sqlite_token_count_stored_as_text(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    await SQLiteChatMessageStore(path, thread_id="thread_t").add_messages(turn("one"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE threadline_messages SET tokens = 'many' WHERE seq = 2")
    conn.close()
    store = SQLiteChatMessageStore(path, thread_id="thread_t")
    with pytest.raises(StoreError, match=r"thread 'thread_t': stored message #2 .*'many'"):
        await store.list_messages(max_tokens=1000)


async def test_sqlite_record_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    await SQLiteChatMessageStore(path, thread_id="thread_t").add_messages(turn("one"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE threadline_messages SET body = 42 WHERE seq = 1")
    conn.close()
    store = SQLiteChatMessageStore(path, thread_id="thread_t")
    with pytest.raises(StoreError, match=r"thread 'thread_t': stored message #1 cannot be read"):
        await store.list_messages()


async def test_redis_values_that_are_not_numbers(redis_url: str, redis_prefix: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)  # pyright: ignore[reportUnknownMemberType]
    try:
        async with RedisChatMessageStore(
            url=redis_url, key_prefix=redis_prefix, thread_id="thread_t"
        ) as store:
            await store.add_messages(turn("one"))
            await raw.lset(f"{redis_prefix}thread_t:t", 1, "many")
            with pytest.raises(StoreError, match=r"thread 'thread_t'.*token count .* many"):
                await store.list_messages(max_tokens=1000)
            await raw.hset(f"{redis_prefix}thread_t:h", "version", "two")
            message = await _refused(store, "thread_t")
            assert "its version is two" in message
            with pytest.raises(StoreError, match="thread_t") as info:
                await store.add_messages(turn("x"))
            assert not isinstance(info.value, ConcurrentThreadUpdateError)
    finally:
        await raw.aclose()


async def test_sqlite_file_that_cannot_be_made_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    store = SQLiteChatMessageStore(blocker / "sub" / "threads.db", thread_id="thread_t")
    with pytest.raises(StoreError, match=r"a_file/sub/threads\.db"):
        await store.add_messages(turn("one"))
