"""The memory store conformance kit: the promises every ``MemoryStore`` keeps, as pytest tests.

Every memory store threadline ships passes it, and so can yours. Subclass
:class:`MemoryStoreConformance` and give it a ``memory_harness`` fixture::

    import functools
    import pytest
    from threadline.testing.memory_conformance import MemoryStoreConformance, MemoryHarness

    class TestMyMemoryStore(MemoryStoreConformance):
        @pytest.fixture
        def memory_harness(self, tmp_path):
            return MemoryHarness(
                # Picklable, so child processes can open the same database; every call is a new
                # handle on one shared database, empty when the test starts:
                factory=functools.partial(MyMemoryStore, tmp_path / "memory.db"),
            )

The kit checks: records round-trip; every read and delete needs a user scope (``UsageError``
otherwise) and nothing crosses users, even with identical facts; agent and app scopes narrow;
``forget`` removes everything of one user and nothing of another, and outranks records derived
before it (``derived_at``); supersession hides a record
from search but keeps it for audit; an expired record (``expires_at``) is never recalled, listed
or returned, and ``prune`` (where a store has it) deletes expired and long-superseded records;
ranking puts the matching record first and honours kinds,
time bounds and the excluded thread; writes are visible to the next read, from another handle
and from two processes writing one user's memory at once; bad input (empty, huge, invalid
Unicode, a reused id) is refused with a clear error and stores nothing, and so is input only some
databases could hold (U+0000, NaN in metadata, ids over ``MAX_ID_BYTES``), so every store answers
alike.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from threadline.exceptions import UsageError
from threadline.memory.records import MAX_ID_BYTES, MemoryRecord, MemoryScope
from threadline.memory.store import MemoryStore

__all__ = ["MemoryHarness", "MemoryStoreConformance"]

ALICE = MemoryScope(user_id="alice")
BOB = MemoryScope(user_id="bob")
_T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHarness:
    """How the kit makes stores of the kind under test."""

    factory: Callable[[], MemoryStore]
    """A new handle on the one database of this test (empty at the start). Must be picklable (a
    class or ``functools.partial``) for the two-process test."""
    cross_process_skip_reason: str | None = None
    """Set when the store cannot be shared by processes; that test is then skipped."""
    max_text_chars: int = 32_000
    """The text limit the stores were made with."""


def fact(text: str, scope: MemoryScope = ALICE, **fields: Any) -> MemoryRecord:
    """A ``fact`` record of ``scope``."""
    return MemoryRecord(kind="fact", text=text, scope=scope, **fields)


def _writer(factory: Callable[[], MemoryStore], name: str, count: int, barrier: Any) -> None:
    """A child process of the two-process test: ``count`` single-record adds for alice."""
    asyncio.run(_write(factory, name, count, barrier))


async def _write(factory: Callable[[], MemoryStore], name: str, count: int, barrier: Any) -> None:
    store = factory()
    try:
        await asyncio.to_thread(barrier.wait)
        for i in range(count):
            await store.add([fact(f"{name} wrote note number {i} about zebras", id=f"{name}-{i}")])
    finally:
        await store.aclose()


async def _ids(store: MemoryStore, query: str, **options: Any) -> list[str]:
    """The ids a search returns (a store with vectors may return weak matches: tests check ids)."""
    return [hit.id for hit in await store.search(query, **options)]


class MemoryStoreConformance:
    """Subclass in a test module and provide a ``memory_harness`` fixture."""

    @pytest_asyncio.fixture
    async def memory_store(self, memory_harness: MemoryHarness) -> Any:
        """A store of the harness, closed afterwards."""
        store = memory_harness.factory()
        yield store
        await store.aclose()

    async def test_records_round_trip(self, memory_store: MemoryStore) -> None:
        """Every field comes back as stored; times as aware UTC."""
        record = fact(
            "Likes green tea ✓ – ünïcödé 🧵",
            scope=MemoryScope(user_id="alice", agent_id="chef", app_id="kitchen"),
            thread_id="t1",
            message_ids=("m1", "m2"),
            occurred_at=datetime(2024, 1, 2, 3, 4, 5),  # naive means UTC
            valid_from=_T0,
            metadata={"subject": "drink", "n": [1, 2.5, None, True]},
        )
        await memory_store.add([record])
        got = await memory_store.get(record.id, scope=ALICE)
        assert got is not None
        assert got.occurred_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert got.recorded_at.tzinfo is not None
        assert abs(got.recorded_at - record.recorded_at) < timedelta(milliseconds=1)
        for name in ("id", "kind", "text", "scope", "thread_id", "message_ids", "valid_from"):
            assert getattr(got, name) == getattr(record, name), name
        assert dict(got.metadata) == dict(record.metadata)
        assert got.valid_to is None and got.is_valid

    async def test_reads_and_deletes_need_a_user_scope(self, memory_store: MemoryStore) -> None:
        """No "all users" operation exists: a missing scope is a UsageError, never everything."""
        await memory_store.add([fact("alice likes tea")])
        bad: Any = None
        calls: list[Callable[[], Any]] = [
            lambda: memory_store.search("tea", scope=bad),
            lambda: memory_store.get("x", scope=bad),
            lambda: memory_store.list(scope=bad),
            lambda: memory_store.delete(["x"], scope=bad),
            lambda: memory_store.supersede("x", scope=bad, valid_to=_T0),
            lambda: memory_store.search("tea", scope="alice"),  # type: ignore[arg-type]
            lambda: memory_store.forget(user_id=""),
            lambda: memory_store.forget(user_id=bad),
        ]
        for call in calls:
            with pytest.raises(UsageError):
                await call()
        with pytest.raises(UsageError, match="user_id"):
            MemoryScope(user_id="")
        assert [r.text for r in await memory_store.list(scope=ALICE)] == ["alice likes tea"]

    async def test_nothing_crosses_users(self, memory_store: MemoryStore) -> None:
        """Identical facts of two users: each sees, changes and deletes only their own."""
        mine, theirs = fact("allergic to peanuts"), fact("allergic to peanuts", scope=BOB)
        await memory_store.add([mine, theirs])
        assert [h.id for h in await memory_store.search("peanuts", scope=ALICE)] == [mine.id]
        assert [r.id for r in await memory_store.list(scope=BOB)] == [theirs.id]
        assert await memory_store.get(theirs.id, scope=ALICE) is None
        assert await memory_store.delete([theirs.id], scope=ALICE) == 0
        assert await memory_store.supersede(theirs.id, scope=ALICE, valid_to=_T0) is False
        still = await memory_store.get(theirs.id, scope=BOB)
        assert still is not None and still.is_valid

    async def test_agent_and_app_scopes_narrow(self, memory_store: MemoryStore) -> None:
        """An agent scope sees its own and the user's shared records, not other agents'."""
        shared = fact("lives in Lyon")
        chef = fact("cooks risotto", scope=MemoryScope(user_id="alice", agent_id="chef"))
        coach = fact("runs marathons", scope=MemoryScope(user_id="alice", agent_id="coach"))
        app = fact("uses dark mode", scope=MemoryScope(user_id="alice", app_id="web"))
        await memory_store.add([shared, chef, coach, app])
        as_chef = MemoryScope(user_id="alice", agent_id="chef")
        assert {r.id for r in await memory_store.list(scope=as_chef)} == {
            shared.id,
            chef.id,
            app.id,
        }
        assert {r.id for r in await memory_store.list(scope=ALICE)} == {
            shared.id,
            chef.id,
            coach.id,
            app.id,
        }
        assert coach.id not in await _ids(memory_store, "marathons", scope=as_chef)
        assert await memory_store.get(coach.id, scope=as_chef) is None
        assert await memory_store.delete([coach.id], scope=as_chef) == 0
        mobile = MemoryScope(user_id="alice", app_id="mobile")
        assert app.id not in await _ids(memory_store, "dark mode", scope=mobile)
        assert (await _ids(memory_store, "dark mode", scope=ALICE))[:1] == [app.id]

    async def test_forget_removes_one_user_entirely(self, memory_store: MemoryStore) -> None:
        """After forget nothing of the user is found by any query; the other user keeps all."""
        texts = [
            "my sister Zelda lives in Reykjavik",
            "I am vegetarian",
            "we adopted a cat named Pixel in March",
        ]
        alice_records = [
            fact(t, thread_id="t-a", occurred_at=_T0 - timedelta(days=i))
            for i, t in enumerate(texts)
        ]
        alice_records.append(
            MemoryRecord(kind="summary", text="summary: Reykjavik trip", scope=ALICE)
        )
        bob_records = [fact(t, scope=BOB, thread_id="t-b") for t in texts]
        await memory_store.add(alice_records + bob_records)
        result = await memory_store.forget(user_id="alice")
        assert result.records == len(alice_records)
        assert result.purged or result.remaining  # the truth either way
        words = {w.strip(".,") for t in texts for w in t.split()} | {"summary", "Reykjavik trip"}
        for word in sorted(words):
            assert await memory_store.search(word, scope=ALICE) == [], word
        for text in texts:
            assert [h.text for h in await memory_store.search(text, scope=BOB)][:1] == [text]
        assert await memory_store.search("what happened in March 2024", scope=ALICE) == []
        assert await memory_store.list(scope=ALICE, include_superseded=True) == []
        for record in alice_records:
            assert await memory_store.get(record.id, scope=ALICE) is None
        assert sorted(r.id for r in await memory_store.list(scope=BOB)) == sorted(
            r.id for r in bob_records
        )
        assert (await memory_store.forget(user_id="alice")).records == 0

    async def test_forget_outranks_work_derived_before_it(self, memory_store: MemoryStore) -> None:
        """A record derived before its user was forgotten is dropped; later ones are kept.

        Background work (a fact extraction) still running when ``forget`` is called must not
        bring the forgotten back: its records carry ``derived_at`` from before the forget.
        """
        await memory_store.add([fact("lives in Oslo")])
        read_before = datetime.now(UTC)
        assert (await memory_store.forget(user_id="alice")).records == 1
        late = fact("is vegetarian", derived_at=read_before)
        bobs = fact("is vegetarian", scope=BOB, derived_at=read_before)
        direct = fact("has a cat named Pixel")
        await memory_store.add([late, bobs, direct])
        fresh = fact("plays the cello", derived_at=datetime.now(UTC))
        await memory_store.add([fresh])
        assert {r.id for r in await memory_store.list(scope=ALICE)} == {direct.id, fresh.id}
        assert late.id not in await _ids(memory_store, "vegetarian", scope=ALICE)
        assert [r.id for r in await memory_store.list(scope=BOB)] == [bobs.id]

    async def test_supersession_keeps_the_old_record_for_audit(
        self, memory_store: MemoryStore
    ) -> None:
        """A superseded record leaves search and list, but stays readable and listable on demand."""
        old = fact("favourite colour is blue", metadata={"subject": "colour"})
        new = fact("favourite colour is green", metadata={"subject": "colour"})
        await memory_store.add([old])
        await memory_store.add([new])
        assert await memory_store.supersede(old.id, scope=ALICE, valid_to=_T0) is True
        assert [h.id for h in await memory_store.search("favourite colour", scope=ALICE)] == [
            new.id
        ]
        assert [r.id for r in await memory_store.list(scope=ALICE)] == [new.id]
        everything = await memory_store.list(scope=ALICE, include_superseded=True)
        assert {r.id for r in everything} == {old.id, new.id}
        audited = await memory_store.get(old.id, scope=ALICE)
        assert audited is not None and audited.valid_to == _T0 and not audited.is_valid
        hits = await memory_store.search("favourite colour", scope=ALICE, include_superseded=True)
        assert {h.id for h in hits} == {old.id, new.id}
        assert await memory_store.supersede("mem_missing", scope=ALICE, valid_to=_T0) is False

    async def test_ranking_and_filters(self, memory_store: MemoryStore) -> None:
        """The matching record ranks first; kinds, time bounds, thread and limit are honoured."""
        distractors = [
            fact(f"talked about the weather and football, round {i}", thread_id="t-old")
            for i in range(20)
        ]
        target = MemoryRecord(
            kind="turn",
            text="my dentist appointment is on Friday at nine",
            scope=ALICE,
            thread_id="t-dentist",
            message_ids=("m7",),
            occurred_at=_T0,
        )
        await memory_store.add([*distractors, target])
        hits = await memory_store.search("when is my dentist appointment?", scope=ALICE)
        assert hits and hits[0].id == target.id
        assert hits[0].message_ids == ("m7",) and hits[0].occurred_at == _T0
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert target.id not in await _ids(memory_store, "dentist", scope=ALICE, kinds=["fact"])
        assert [
            h.id for h in await memory_store.search("dentist", scope=ALICE, kinds=["turn"])
        ] == [target.id]
        assert await _ids(memory_store, "dentist", scope=ALICE, since=_T0 + timedelta(1)) == []
        assert target.id not in await _ids(memory_store, "dentist", scope=ALICE, until=_T0)
        bounded = await memory_store.search(
            "dentist", scope=ALICE, since=_T0, until=_T0 + timedelta(1)
        )
        assert [h.id for h in bounded] == [target.id]
        assert target.id not in await _ids(
            memory_store, "dentist", scope=ALICE, exclude_thread_id="t-dentist"
        )
        assert len(await memory_store.search("weather football", scope=ALICE, limit=3)) == 3
        listed = await memory_store.list(scope=ALICE, thread_id="t-dentist")
        assert [r.id for r in listed] == [target.id]
        assert len(await memory_store.list(scope=ALICE, limit=5)) == 5

    async def test_the_period_a_question_names_wins(self, memory_store: MemoryStore) -> None:
        """Two equally matching records: the one that happened in the named month ranks first."""
        march = fact("went to a concert with Sam", occurred_at=datetime(2023, 3, 14, tzinfo=UTC))
        june = fact("went to a concert with Sam", occurred_at=datetime(2023, 6, 20, tzinfo=UTC))
        await memory_store.add([march, june])
        hits = await memory_store.search("which concert did I go to in March 2023?", scope=ALICE)
        assert [h.id for h in hits][:1] == [march.id]
        hits = await memory_store.search("the concert in June 2023", scope=ALICE)
        assert [h.id for h in hits][:1] == [june.id]

    async def test_read_your_writes_across_handles(
        self, memory_store: MemoryStore, memory_harness: MemoryHarness
    ) -> None:
        """A write is visible to the next read, from this handle and from another one."""
        other = memory_harness.factory()
        try:
            for i in range(5):
                record = fact(f"checkpoint {i} reached with codeword quokka{i}")
                await memory_store.add([record])
                assert (await _ids(other, f"quokka{i}", scope=ALICE))[:1] == [record.id]
                assert (await memory_store.get(record.id, scope=ALICE)) is not None
        finally:
            await other.aclose()

    async def test_re_adding_an_id_replaces_but_never_across_users(
        self, memory_store: MemoryStore
    ) -> None:
        """Re-importing is idempotent; an id of another user is refused and left untouched."""
        record = fact("drinks coffee black")
        await memory_store.add([record])
        await memory_store.add([fact("drinks coffee with oat milk", id=record.id)])
        assert [r.text for r in await memory_store.list(scope=ALICE)] == [
            "drinks coffee with oat milk"
        ]
        assert [h.text for h in await memory_store.search("black", scope=ALICE)] in (
            [],
            ["drinks coffee with oat milk"],
        )
        with pytest.raises(UsageError, match="another user"):
            await memory_store.add([fact("hijack", scope=BOB, id=record.id)])
        assert await memory_store.list(scope=BOB) == []
        kept = await memory_store.get(record.id, scope=ALICE)
        assert kept is not None and kept.text == "drinks coffee with oat milk"

    async def test_bad_input_is_refused_whole(
        self, memory_store: MemoryStore, memory_harness: MemoryHarness
    ) -> None:
        """Empty, huge, invalid-Unicode and non-JSON input: a clear UsageError, nothing stored."""
        good = fact("a perfectly fine memory")
        cases: list[tuple[MemoryRecord, str]] = [
            (fact(""), "empty"),
            (fact("   \n"), "empty"),
            (fact("x" * (memory_harness.max_text_chars + 1)), "limit"),
            (fact("broken \ud800 surrogate"), "surrogate"),
            (fact("odd metadata", metadata={"when": object()}), "JSON"),
        ]
        for bad, message in cases:
            with pytest.raises(UsageError, match=message):
                await memory_store.add([good, bad])
        with pytest.raises(UsageError, match="repeated"):
            await memory_store.add([good, good])
        assert await memory_store.list(scope=ALICE) == []
        for query in ("", "  ", "bad \udfff query"):
            with pytest.raises(UsageError):
                await memory_store.search(query, scope=ALICE)
        with pytest.raises(UsageError, match="limit"):
            await memory_store.search("fine", scope=ALICE, limit=0)
        with pytest.raises(UsageError, match="kinds"):
            await memory_store.search("fine", scope=ALICE, kinds=["nonsense"])  # type: ignore[list-item]
        with pytest.raises(UsageError, match="sequence"):
            await memory_store.add(good)  # type: ignore[arg-type]
        await memory_store.add([good])
        assert [r.id for r in await memory_store.list(scope=ALICE)] == [good.id]

    async def test_input_some_databases_cannot_hold_is_refused_alike(
        self, memory_store: MemoryStore
    ) -> None:
        """U+0000, NaN and infinities, over-long ids: the same UsageError from every store.

        PostgreSQL cannot keep U+0000 in text or JSON, nor NaN in JSON, nor index an id of
        several kilobytes; SQLite could. Every store refuses them alike, so code moved from one
        store to another meets the same answer. Ids up to ``MAX_ID_BYTES`` are kept whole.
        """
        long_id = "i" * (MAX_ID_BYTES + 1)
        cases: list[tuple[MemoryRecord, str]] = [
            (fact("nul \x00 inside"), "U\\+0000"),
            (fact("fine", metadata={"score": float("nan")}), "JSON"),
            (fact("fine", metadata={"score": float("inf")}), "JSON"),
            (fact("fine", metadata={"note": ["a\x00b"]}), "U\\+0000"),
            (fact("fine", id=long_id), "limit"),
            (fact("fine", id="mem_\x00"), "U\\+0000"),
            (fact("fine", thread_id=long_id), "limit"),
            (fact("fine", message_ids=("m\x00",)), "U\\+0000"),
        ]
        for bad, message in cases:
            with pytest.raises(UsageError, match=message):
                await memory_store.add([fact("a fine memory"), bad])
        for name in ("user_id", "agent_id", "app_id"):
            fields: dict[str, Any] = {"user_id": "alice", name: long_id}
            with pytest.raises(UsageError, match="limit"):
                MemoryScope(**fields)
            fields[name] = "al\x00ice"
            with pytest.raises(UsageError, match="U\\+0000"):
                MemoryScope(**fields)
        assert await memory_store.search("tea \x00", scope=ALICE) == []  # searched as words
        with pytest.raises(UsageError, match="U\\+0000"):
            await memory_store.list(scope=ALICE, thread_id="t\x00")
        with pytest.raises(UsageError, match="U\\+0000"):
            await memory_store.forget(user_id="al\x00ice")
        assert await memory_store.list(scope=ALICE) == []
        widest = "w" * MAX_ID_BYTES
        scope = MemoryScope(user_id=widest, agent_id=widest, app_id=widest)
        record = fact("the longest ids are kept", scope=scope, id=widest, thread_id=widest)
        await memory_store.add([record])
        got = await memory_store.get(widest, scope=scope)
        assert got is not None and got.scope == scope and got.thread_id == widest
        assert [r.id for r in await memory_store.list(scope=scope, thread_id=widest)] == [widest]

    async def test_expired_records_are_never_recalled(self, memory_store: MemoryStore) -> None:
        """A record past its ``expires_at`` leaves search, list and get, superseded or not."""
        now = datetime.now(UTC)
        gone = fact("parks the van on level two", expires_at=now - timedelta(seconds=1))
        later = fact("parks the van on level three", expires_at=now + timedelta(days=1))
        lasting = fact("parks the van at home")
        await memory_store.add([gone, later, lasting])
        hits = await _ids(memory_store, "parks the van level two", scope=ALICE)
        assert gone.id not in hits and set(hits) == {later.id, lasting.id}
        for superseded in (False, True):
            listed = await memory_store.list(scope=ALICE, include_superseded=superseded)
            assert {r.id for r in listed} == {later.id, lasting.id}
        assert await memory_store.get(gone.id, scope=ALICE) is None
        got = await memory_store.get(later.id, scope=ALICE)
        assert got is not None and got.expires_at == later.expires_at

    async def test_prune_removes_expired_and_old_superseded_records(
        self, memory_store: MemoryStore
    ) -> None:
        """``prune``: expired records, and those superseded before the age; a dry run first."""
        prune = getattr(memory_store, "prune", None)
        if prune is None:
            pytest.skip("the store has no prune()")
        now = datetime.now(UTC)
        expired = fact("was in Lisbon this week", expires_at=now - timedelta(minutes=1))
        bob_expired = fact("was in Oslo", scope=BOB, expires_at=now - timedelta(minutes=1))
        old = fact("lives in Porto")
        recent = fact("lives in Braga")
        current = fact("lives in Faro")
        await memory_store.add([expired, bob_expired, old, recent, current])
        await memory_store.supersede(old.id, scope=ALICE, valid_to=now - timedelta(days=40))
        await memory_store.supersede(recent.id, scope=ALICE, valid_to=now - timedelta(days=2))
        dry = await prune(older_than=timedelta(days=30), dry_run=True)
        assert (dry.expired, dry.superseded, dry.dry_run) == (2, 1, True)
        audited = await memory_store.list(scope=ALICE, include_superseded=True)
        assert {r.id for r in audited} == {old.id, recent.id, current.id}
        done = await prune(older_than=timedelta(days=30))
        assert (done.expired, done.superseded, done.dry_run) == (2, 1, False)
        audited = await memory_store.list(scope=ALICE, include_superseded=True)
        assert {r.id for r in audited} == {recent.id, current.id}
        again = await prune(older_than=timedelta(days=30))
        assert (again.expired, again.superseded) == (0, 0)
        for bad in (timedelta(0), timedelta(days=-1), now + timedelta(hours=1)):
            with pytest.raises(UsageError):
                await prune(older_than=bad)
        assert len(await memory_store.list(scope=ALICE, include_superseded=True)) == 2

    async def test_delete(self, memory_store: MemoryStore) -> None:
        """Deleted records are gone from get, list and search; the count is exact."""
        keep, drop = fact("keeps a blue notebook"), fact("keeps a red notebook")
        await memory_store.add([keep, drop])
        assert await memory_store.delete([drop.id, drop.id, "mem_missing"], scope=ALICE) == 1
        assert await memory_store.get(drop.id, scope=ALICE) is None
        assert [h.id for h in await memory_store.search("notebook red", scope=ALICE)] == [keep.id]
        assert await memory_store.delete([], scope=ALICE) == 0

    async def test_two_processes_write_one_users_memory(
        self, memory_store: MemoryStore, memory_harness: MemoryHarness
    ) -> None:
        """Two processes add to one user's memory at once: every record lands and is found."""
        if memory_harness.cross_process_skip_reason is not None:
            pytest.skip(memory_harness.cross_process_skip_reason)
        count = 15
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads and event loops
        barrier = ctx.Barrier(2, timeout=120)
        procs = [
            ctx.Process(target=_writer, args=(memory_harness.factory, name, count, barrier))
            for name in ("p1", "p2")
        ]
        for p in procs:
            p.start()
        for p in procs:
            await asyncio.to_thread(p.join, 180)
            if p.is_alive():
                p.kill()
        assert [p.exitcode for p in procs] == [0, 0]
        ids = {r.id for r in await memory_store.list(scope=ALICE)}
        assert ids == {f"{n}-{i}" for n in ("p1", "p2") for i in range(count)}
        hits = await memory_store.search("zebras note", scope=ALICE, limit=2 * count)
        assert len(hits) == 2 * count
