"""Retention details beyond the kit: the plan, ages, records, SQLite pages, Redis TTLs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio

from threadline.exceptions import UsageError
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.redis import RedisChatMessageStore, RedisThreadDatabase
from threadline.threads.stores.retention import cutoff_of, parse_age, plan_prune
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase
from threadline.types.messages import ChatMessage, Role


def _said(*texts: str) -> list[ChatMessage]:
    return [ChatMessage(Role.USER, t) for t in texts]


async def _cutoff() -> datetime:
    await asyncio.sleep(0.03)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.03)
    return cutoff


# -- the plan and the ages ---------------------------------------------------------------------


def test_plan_keeps_every_ancestor_of_a_kept_fork_even_in_a_deep_chain() -> None:
    chain = [(f"t{i}", f"t{i - 1}" if i else None, i < 4999) for i in range(5000)]
    doomed, kept = plan_prune(chain)
    assert doomed == []
    assert len(kept) == 4999
    doomed, kept = plan_prune([(t, p, True) for t, p, _ in chain])
    assert doomed == [f"t{i}" for i in reversed(range(5000))]  # forks before parents
    assert kept == []


def test_plan_keeps_a_parent_loop_rather_than_guess() -> None:
    doomed, kept = plan_prune([("a", "b", True), ("b", "a", True), ("c", None, True)])
    assert doomed == ["c"]
    assert sorted(kept) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45), ("2w", 14 * 86400)],
)
def test_parse_age(text: str, seconds: int) -> None:
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0d", "-3d", "30", "d", "30 days", "", "1y"])
def test_parse_age_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError, match="age"):
        parse_age(text)


def test_cutoff_of_an_age_and_a_datetime() -> None:
    assert cutoff_of(timedelta(hours=1), now=10_000.0) == 10_000.0 - 3600
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert cutoff_of(when) == when.timestamp()
    with pytest.raises(UsageError, match="time zone"):
        cutoff_of(datetime(2026, 1, 1))
    with pytest.raises(UsageError, match="future"):
        cutoff_of(datetime.now(UTC) + timedelta(minutes=5))


# -- records go with their threads (SQLite and PostgreSQL) -------------------------------------


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def record_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SQLiteThreadDatabase | PostgresThreadDatabase]:
    database: SQLiteThreadDatabase | PostgresThreadDatabase
    if request.param == "sqlite":
        database = SQLiteThreadDatabase(tmp_path / "threads.db")
    else:
        url = cast(str, request.getfixturevalue("postgres_url"))
        schema = cast(str, request.getfixturevalue("postgres_schema"))
        database = PostgresThreadDatabase(url, schema=schema)
    await database.open()
    yield database
    await database.aclose()


async def test_records_of_pruned_threads_go_with_them(
    record_database: SQLiteThreadDatabase | PostgresThreadDatabase,
) -> None:
    db = record_database
    # An old conversation: its thread, a response and a thread record naming it, and a message
    # record filed under the thread record (the Assistants API's layout).
    old_batch = ThreadBatch().append("conv_old", _said("hi", "hello"), expected_version=0)
    old_batch.put(
        ThreadRecord(kind="response", id="resp_old", owner="k1", thread_id="conv_old", body={}),
        ThreadRecord(kind="thread", id="conv_old", owner="k1", thread_id="conv_old", body={}),
        ThreadRecord(kind="message", id="msg_old", owner="k1", parent="conv_old", body={}),
        ThreadRecord(kind="idempotency", id="POST:/v1/responses:k", owner="k1", body={"s": 1}),
        ThreadRecord(kind="assistant", id="asst_1", owner="k1", body={"name": "a"}),
    )
    await db.commit(old_batch)
    cutoff = await _cutoff()
    new_batch = ThreadBatch().append("conv_new", _said("new"), expected_version=0)
    new_batch.put(
        ThreadRecord(kind="response", id="resp_new", owner="k1", thread_id="conv_new", body={}),
        ThreadRecord(kind="idempotency", id="POST:/v1/responses:n", owner="k1", body={"s": 1}),
    )
    await db.commit(new_batch)

    dry = await db.delete_threads(older_than=cutoff, dry_run=True, expire_records=["idempotency"])
    assert (dry.threads, dry.messages, dry.records) == (("conv_old",), 2, 4)
    assert await db.get_record("response", "resp_old", owner="k1") is not None

    result = await db.delete_threads(older_than=cutoff, expire_records=["idempotency"])
    assert (result.threads, result.messages, result.records) == (("conv_old",), 2, 4)
    for kind, rid in [
        ("response", "resp_old"),
        ("thread", "conv_old"),
        ("message", "msg_old"),
        ("idempotency", "POST:/v1/responses:k"),
    ]:
        assert await db.get_record(kind, rid, owner="k1") is None, (kind, rid)
    for kind, rid in [
        ("response", "resp_new"),
        ("idempotency", "POST:/v1/responses:n"),
        ("assistant", "asst_1"),  # belongs to no thread, and its kind was not named
    ]:
        assert await db.get_record(kind, rid, owner="k1") is not None, (kind, rid)
    assert [m.text for m in await db.store("conv_new").list_messages()] == ["new"]


async def test_two_postgres_processes_prune_at_once(
    postgres_url: str, postgres_schema: str
) -> None:
    """Prunes from two pools (as from two server processes) take turns; each thread goes once."""
    first = PostgresThreadDatabase(postgres_url, schema=postgres_schema)
    second = PostgresThreadDatabase(postgres_url, schema=postgres_schema)
    await first.open()
    await second.open()
    try:
        ids: list[str] = []
        for i in range(30):
            store = first.store()
            await store.add_messages(_said(f"m{i}"), expected_version=0)
            ids.append(store.thread_id)
        cutoff = await _cutoff()
        a, b = await asyncio.gather(
            first.delete_threads(older_than=cutoff), second.delete_threads(older_than=cutoff)
        )
        assert sorted(a.threads + b.threads) == sorted(ids)
        assert not set(a.threads) & set(b.threads)
        assert a.messages + b.messages == 30
    finally:
        await first.aclose()
        await second.aclose()


# -- SQLite gives the pages back ---------------------------------------------------------------


def _pages(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return page_count, free, path.stat().st_size
    finally:
        conn.close()


async def _fill(db: SQLiteThreadDatabase, label: str, threads: int = 40) -> None:
    text = "lorem ipsum dolor sit amet " * 40
    for i in range(threads):
        store = db.store()
        await store.add_messages(_said(*[f"{label}{i} {text}"] * 10), expected_version=0)


async def test_a_new_sqlite_file_shrinks_after_a_prune(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    db = SQLiteThreadDatabase(path)
    await db.open()
    try:
        await _fill(db, "old")
        cutoff = await _cutoff()
        await _fill(db, "new", threads=2)
        pages_before, _, size_before = _pages(path)
        result = await db.delete_threads(older_than=cutoff)
        assert len(result.threads) == 40
        pages_after, free_after, size_after = _pages(path)
    finally:
        await db.aclose()
    assert free_after == 0
    assert pages_after < pages_before / 4, (pages_before, pages_after)
    assert size_after < size_before / 4, (size_before, size_after)


async def test_an_older_sqlite_file_reuses_the_freed_pages(tmp_path: Path) -> None:
    """A file made before auto_vacuum was set keeps its size, and later writes fill the gap."""
    path = tmp_path / "threads.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("CREATE TABLE made_by_an_older_version (x)")
    conn.close()
    db = SQLiteThreadDatabase(path)
    await db.open()
    try:
        await _fill(db, "old")
        cutoff = await _cutoff()
        pages_before, _, _ = _pages(path)
        await db.delete_threads(older_than=cutoff)
        pages_pruned, free, _ = _pages(path)
        assert pages_pruned == pages_before
        assert free > pages_before / 2
        await _fill(db, "again")  # as much as was pruned
        pages_after, _, _ = _pages(path)
    finally:
        await db.aclose()
    assert pages_after <= pages_before * 1.1, (pages_before, pages_after)


# -- Redis: the time it keeps and the TTL ------------------------------------------------------


async def _pttl(store: RedisChatMessageStore, thread_id: str, suffix: str) -> int:
    client: Any = store._client
    return int(await client.pttl(f"{store.key_prefix}{thread_id}{suffix}"))


async def test_redis_ttl_is_set_refreshed_and_extends_ancestors(
    redis_url: str, redis_prefix: str
) -> None:
    keep = RedisThreadDatabase(redis_url, key_prefix=redis_prefix)
    short = RedisThreadDatabase(redis_url, key_prefix=redis_prefix, ttl=timedelta(seconds=100))
    long = RedisThreadDatabase(redis_url, key_prefix=redis_prefix, ttl=timedelta(hours=1))
    try:
        forever = keep.store()
        await forever.add_messages(_said("kept forever"), expected_version=0)
        parent = short.store()
        await parent.add_messages(_said("p1"), expected_version=0)
        for suffix in (":h", ":m", ":t"):
            assert 90_000 < await _pttl(parent, parent.thread_id, suffix) <= 100_000
        # A fork with a longer TTL extends its parent's, never shortens it.
        child = await long.store(parent.thread_id).fork()
        await child.add_messages(_said("c1"), expected_version=1)
        assert await _pttl(child, parent.thread_id, ":m") > 3_000_000
        await parent.add_messages(_said("p2"), expected_version=1)  # its own TTL is shorter,
        assert await _pttl(parent, parent.thread_id, ":m") > 3_000_000  # but its fork reads it
        # A fork made without a TTL may read its parent forever: the parent loses its expiry.
        forever_fork = await keep.store(parent.thread_id).fork()
        for suffix in (":h", ":m", ":t"):
            assert await _pttl(parent, parent.thread_id, suffix) == -1
        assert await _pttl(parent, forever_fork.thread_id, ":h") == -1
        # A thread without a TTL keeps none when a fork with one is made from it.
        fork_of_forever = await short.store(forever.thread_id).fork()
        await fork_of_forever.add_messages(_said("f1"), expected_version=1)
        assert await _pttl(forever, forever.thread_id, ":h") == -1
        assert await _pttl(fork_of_forever, fork_of_forever.thread_id, ":h") > 0
    finally:
        await keep.aclose()
        await short.aclose()
        await long.aclose()


async def test_redis_threads_expire_but_a_living_fork_keeps_its_parent(
    redis_url: str, redis_prefix: str
) -> None:
    quick = RedisThreadDatabase(redis_url, key_prefix=redis_prefix, ttl=timedelta(milliseconds=400))
    slow = RedisThreadDatabase(redis_url, key_prefix=redis_prefix, ttl=timedelta(seconds=30))
    try:
        lonely = quick.store()
        await lonely.add_messages(_said("gone soon"), expected_version=0)
        parent = quick.store()
        await parent.add_messages(_said("p1", "p2"), expected_version=0)
        child = await slow.store(parent.thread_id).fork()
        await child.add_messages(_said("c1"), expected_version=2)
        await asyncio.sleep(0.8)
        assert await quick.store(lonely.thread_id).list_messages() == []
        assert [m.text for m in await slow.store(child.thread_id).list_messages()] == [
            "p1",
            "p2",
            "c1",
        ]
    finally:
        await quick.aclose()
        await slow.aclose()


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), 30])
async def test_redis_refuses_a_bad_ttl(redis_url: str, ttl: Any) -> None:
    with pytest.raises(UsageError, match="ttl"):
        RedisThreadDatabase(redis_url, ttl=ttl)
    with pytest.raises(UsageError, match="ttl"):
        RedisChatMessageStore(url=redis_url, ttl=ttl)


async def test_redis_threads_written_before_times_were_kept_are_stamped(
    redis_url: str, redis_prefix: str
) -> None:
    """A thread with no ``updated`` is not deleted: the prune stamps it, a later one may delete."""
    db = RedisThreadDatabase(redis_url, key_prefix=redis_prefix)
    try:
        store = db.store()
        await store.add_messages(_said("from an older version"), expected_version=0)
        client: Any = store._client
        await client.hdel(f"{redis_prefix}{store.thread_id}:h", "updated")
        cutoff = await _cutoff()
        assert (await db.delete_threads(older_than=cutoff)).threads == ()
        assert await client.hget(f"{redis_prefix}{store.thread_id}:h", "updated")
        listed = await db.list_threads()
        assert [(i.thread_id, i.version) for i in listed] == [(store.thread_id, 1)]
        assert listed[0].updated_at > cutoff.timestamp()
        later = await _cutoff()
        assert (await db.delete_threads(older_than=later)).threads == (store.thread_id,)
    finally:
        await db.aclose()
