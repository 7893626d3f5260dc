"""The retention conformance kit: what every thread database's ``delete_threads`` promises.

Every thread database threadline ships (SQLite, PostgreSQL, Redis) passes it, and so can yours.
Subclass :class:`RetentionConformance` and give it a ``retention_harness`` fixture::

    class TestMyDatabase(RetentionConformance):
        @pytest.fixture
        async def retention_harness(self, tmp_path):
            async def new_database():
                database = MyDatabase(tmp_path / "db")
                await database.open()
                return database

            # Picklable, so a child process can open the same database:
            yield RetentionHarness(
                new_database=new_database, factory=functools.partial(MyDatabase, tmp_path / "db")
            )

The kit checks: threads last updated before the cutoff are deleted and newer ones kept; a fork
that is kept keeps every ancestor it reads (and an old fork of a kept parent goes alone); a dry
run changes nothing and reports what a prune then deletes; a zero or negative age, a naive or
future datetime are refused with ``UsageError`` and delete nothing; a prune racing appends from
another process never loses a message of a thread it keeps. Ages are separated by real time
(a few tens of milliseconds on either side of a ``datetime`` cutoff), never by editing rows.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from threadline.closing import aclose_if_closable
from threadline.exceptions import ConcurrentThreadUpdateError, UsageError
from threadline.threads.stores.database import PrunableDatabase
from threadline.threads.stores.retention import PruneResult
from threadline.types.messages import ChatMessage, Role

__all__ = ["RetentionConformance", "RetentionHarness"]

_GAP = 0.03
"""Seconds between the last write before a cutoff, the cutoff and the first write after it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionHarness:
    """How the kit makes the thread databases under test."""

    new_database: Callable[[], Awaitable[PrunableDatabase]]
    """An opened database holding no threads; each call may share one namespace (a file, a
    schema, a prefix) with the others of the same test, and the kit closes them."""
    factory: Callable[[], PrunableDatabase]
    """The same database, unopened, for a child process. Must be picklable."""
    cross_process_skip_reason: str | None = None
    """Set when the database cannot be shared with another process; that test is skipped."""


def _said(text: str) -> list[ChatMessage]:
    return [ChatMessage(Role.USER, text)]


async def _texts(database: PrunableDatabase, thread_id: str) -> list[str]:
    return [m.text for m in await database.store(thread_id).list_messages()]


async def _thread(database: PrunableDatabase, *texts: str) -> str:
    store = database.store()
    await store.add_messages([ChatMessage(Role.USER, t) for t in texts], expected_version=0)
    return getattr(store, "thread_id")  # noqa: B009 - every shipped store has it; the protocol not


async def _cutoff() -> datetime:
    """A cutoff strictly after everything written so far and before everything written next."""
    await asyncio.sleep(_GAP)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(_GAP)
    return cutoff


def _appender(
    factory: Callable[[], PrunableDatabase],
    thread_ids: Sequence[str],
    barrier: Any,
    under_way: Any,
    results: Any,
) -> None:
    """The child process of the concurrency test: append one message to each thread."""
    results.put(asyncio.run(_append_each(factory, thread_ids, barrier, under_way)))


async def _append_each(
    factory: Callable[[], PrunableDatabase],
    thread_ids: Sequence[str],
    barrier: Any,
    under_way: Any,
) -> list[str]:
    database = factory()
    await database.open()
    landed: list[str] = []
    try:
        await asyncio.to_thread(barrier.wait)
        for n, tid in enumerate(thread_ids):
            if n == len(thread_ids) // 4:
                under_way.set()  # the prune starts now, racing the appends still to come
            try:
                await database.store(tid).add_messages(_said(f"{tid} late"), expected_version=2)
                landed.append(tid)
            except ConcurrentThreadUpdateError:
                pass  # pruned before this append: it wrote nothing
    finally:
        await database.aclose()
    return landed


class RetentionConformance:
    """The retention tests; subclass it as ``Test...`` with a ``retention_harness`` fixture."""

    pytestmark = [pytest.mark.asyncio]

    @pytest_asyncio.fixture
    async def retention_databases(self) -> Any:
        """Every database a test opens, closed afterwards."""
        databases: list[PrunableDatabase] = []
        yield databases
        for database in databases:
            await aclose_if_closable(database)

    async def _open(
        self, harness: RetentionHarness, databases: list[PrunableDatabase]
    ) -> PrunableDatabase:
        database = await harness.new_database()
        databases.append(database)
        return database

    async def test_old_threads_go_and_new_ones_stay(
        self, retention_harness: RetentionHarness, retention_databases: list[PrunableDatabase]
    ) -> None:
        """Threads last updated before the cutoff are deleted; one appended to since is not."""
        db = await self._open(retention_harness, retention_databases)
        old = [await _thread(db, f"old {i}", "reply") for i in range(3)]
        revived = await _thread(db, "old but revived")
        cutoff = await _cutoff()
        await db.store(revived).add_messages(_said("new turn"), expected_version=1)
        new = await _thread(db, "new")
        result = await db.delete_threads(older_than=cutoff)
        assert isinstance(result, PruneResult)
        assert sorted(result.threads) == sorted(old)
        assert result.messages == 6
        assert not result.dry_run
        assert result.kept_for_forks == ()
        for tid in old:
            assert await _texts(db, tid) == []
        assert await _texts(db, revived) == ["old but revived", "new turn"]
        assert await _texts(db, new) == ["new"]
        listed = {info.thread_id for info in await db.list_threads()}
        assert not listed & set(old)
        assert {revived, new} <= listed
        again = await db.delete_threads(older_than=cutoff)  # nothing left to delete
        assert again.threads == ()
        # A day's age deletes nothing of threads written just now.
        assert (await db.delete_threads(older_than=timedelta(days=1))).threads == ()

    async def test_forks_survive_pruning_of_their_parents(
        self, retention_harness: RetentionHarness, retention_databases: list[PrunableDatabase]
    ) -> None:
        """A kept fork keeps every ancestor it reads; old forks of kept threads go alone."""
        db = await self._open(retention_harness, retention_databases)
        root = db.store()
        await root.add_messages(_said("r1") + _said("r2") + _said("r3"), expected_version=0)
        middle = await root.fork(at=2)  # reads r1, r2 from root
        await middle.add_messages(_said("m1"), expected_version=2)
        leaf = await middle.fork()  # reads r1, r2, m1
        dead_branch = await root.fork(at=1)
        await dead_branch.add_messages(_said("d1"), expected_version=1)
        parent = db.store()
        await parent.add_messages(_said("p1"), expected_version=0)
        old_fork_of_new = await parent.fork()
        await old_fork_of_new.add_messages(_said("o1"), expected_version=1)
        cutoff = await _cutoff()
        await leaf.add_messages(_said("l1"), expected_version=3)  # the leaf lives on
        await parent.add_messages(_said("p2"), expected_version=1)  # and so does this parent
        ids = {
            name: getattr(store, "thread_id")  # noqa: B009
            for name, store in [
                ("root", root),
                ("middle", middle),
                ("leaf", leaf),
                ("dead", dead_branch),
                ("parent", parent),
                ("old_fork", old_fork_of_new),
            ]
        }
        result = await db.delete_threads(older_than=cutoff)
        assert sorted(result.threads) == sorted([ids["dead"], ids["old_fork"]])
        assert sorted(result.kept_for_forks) == sorted([ids["root"], ids["middle"]])
        assert await _texts(db, ids["leaf"]) == ["r1", "r2", "m1", "l1"]
        assert await _texts(db, ids["middle"]) == ["r1", "r2", "m1"]
        assert await _texts(db, ids["root"]) == ["r1", "r2", "r3"]
        assert await _texts(db, ids["parent"]) == ["p1", "p2"]
        assert await _texts(db, ids["dead"]) == []
        assert await _texts(db, ids["old_fork"]) == []
        # Once the leaf is old too, the whole chain goes, forks before parents.
        later = await _cutoff()
        result = await db.delete_threads(older_than=later)
        chain = [ids["leaf"], ids["middle"], ids["root"]]
        assert [t for t in result.threads if t in chain] == chain
        for tid in chain:
            assert await _texts(db, tid) == []

    async def test_dry_run_changes_nothing(
        self, retention_harness: RetentionHarness, retention_databases: list[PrunableDatabase]
    ) -> None:
        """A dry run reports exactly what the prune after it deletes, and deletes nothing."""
        db = await self._open(retention_harness, retention_databases)
        old = [await _thread(db, f"old {i}", "x", "y") for i in range(2)]
        forked = db.store(old[0])
        kept_fork = await forked.fork()
        cutoff = await _cutoff()
        await kept_fork.add_messages(_said("new"), expected_version=3)
        before = {tid: await _texts(db, tid) for tid in old}
        listed = sorted(i.thread_id for i in await db.list_threads())
        dry = await db.delete_threads(older_than=cutoff, dry_run=True)
        assert dry.dry_run
        assert dry.threads == (old[1],)
        assert dry.kept_for_forks == (old[0],)
        assert dry.messages == 3
        assert {tid: await _texts(db, tid) for tid in old} == before
        assert sorted(i.thread_id for i in await db.list_threads()) == listed
        real = await db.delete_threads(older_than=cutoff)
        assert (real.threads, real.kept_for_forks, real.messages) == (
            dry.threads,
            dry.kept_for_forks,
            dry.messages,
        )
        assert await _texts(db, old[1]) == []

    @pytest.mark.parametrize(
        "older_than",
        [
            timedelta(0),
            timedelta(seconds=-1),
            timedelta(days=-30),
            datetime(2020, 1, 1),  # naive: which time zone?
            datetime.now(UTC) + timedelta(hours=1),
            "30d",
            30,
        ],
        ids=["zero", "minus-1s", "minus-30d", "naive", "future", "text", "int"],
    )
    async def test_bad_ages_are_refused(
        self,
        retention_harness: RetentionHarness,
        retention_databases: list[PrunableDatabase],
        older_than: Any,
    ) -> None:
        """A zero or negative age, a naive or future datetime: ``UsageError``, nothing deleted."""
        db = await self._open(retention_harness, retention_databases)
        tid = await _thread(db, "keep me")
        await _cutoff()
        with pytest.raises(UsageError) as info:
            await db.delete_threads(older_than=older_than)
        assert "older_than" in str(info.value) or "age" in str(info.value)
        assert await _texts(db, tid) == ["keep me"]
        with pytest.raises(UsageError):
            await db.delete_threads(older_than=older_than, dry_run=True)

    async def test_concurrent_appends_lose_nothing_kept(
        self, retention_harness: RetentionHarness, retention_databases: list[PrunableDatabase]
    ) -> None:
        """A prune racing another process's appends: every landed append's thread is whole."""
        if retention_harness.cross_process_skip_reason is not None:
            pytest.skip(retention_harness.cross_process_skip_reason)
        db = await self._open(retention_harness, retention_databases)
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads and event loops
        for round_ in range(2):
            threads = [await _thread(db, f"{round_}/{i} a", "b") for i in range(40)]
            cutoff = await _cutoff()
            order = threads.copy()
            random.Random(round_).shuffle(order)
            barrier = ctx.Barrier(2, timeout=120)
            under_way = ctx.Event()
            results = ctx.Queue()
            child = ctx.Process(
                target=_appender,
                args=(retention_harness.factory, order, barrier, under_way, results),
            )
            child.start()
            try:
                await asyncio.to_thread(barrier.wait)
                assert await asyncio.to_thread(under_way.wait, 120)
                result = await db.delete_threads(older_than=cutoff)
                landed = set(await asyncio.to_thread(results.get, True, 120))
            finally:
                await asyncio.to_thread(child.join, 30)
                if child.is_alive():
                    child.kill()
                results.close()
            assert child.exitcode == 0
            assert not landed & set(result.threads), "a thread appended to was deleted"
            assert set(order[: len(order) // 4]) <= landed  # appended before the prune began
            for i, tid in enumerate(threads):
                texts = await _texts(db, tid)
                if tid in landed:
                    assert texts == [f"{round_}/{i} a", "b", f"{tid} late"]
                else:  # only a pruned thread refuses an append expecting its 2 messages
                    assert tid in result.threads
                    assert texts == []
