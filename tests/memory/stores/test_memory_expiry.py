"""Memory expiry beyond the kit: the in-memory store, files written before expiry, real deletes,
and a lifetime per kind (``ExpiringMemoryStore``) for the records components write."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from threadline.exceptions import UsageError
from threadline.memory.conversation import ConversationMemory
from threadline.memory.expiring import ExpiringMemoryStore
from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.memory.stores.sqlite import SQLiteMemoryStore
from threadline.types import ChatMessage, Role

ALICE = MemoryScope(user_id="alice")


def _fact(text: str, **fields: object) -> MemoryRecord:
    return MemoryRecord(kind="fact", text=text, scope=ALICE, **fields)  # pyright: ignore[reportArgumentType]


async def test_the_in_memory_store_hides_and_prunes_expired_records() -> None:
    store = InMemoryMemoryStore()
    now = datetime.now(UTC)
    gone = _fact("was in Lisbon", expires_at=now - timedelta(seconds=1))
    kept = _fact("was in Lisbon last year")
    await store.add([gone, kept])
    assert [h.record.id for h in await store.search("Lisbon", scope=ALICE)] == [kept.id]
    assert [r.id for r in await store.list(scope=ALICE, include_superseded=True)] == [kept.id]
    assert await store.get(gone.id, scope=ALICE) is None
    result = await store.prune(older_than=timedelta(days=1), dry_run=True)
    assert (result.expired, result.superseded, len(store)) == (1, 0, 2)
    result = await store.prune(older_than=timedelta(days=1))
    assert (result.expired, len(store)) == (1, 1)
    with pytest.raises(UsageError):
        await store.prune(older_than=timedelta(0))


def _rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])
    finally:
        conn.close()


async def test_a_sqlite_file_from_before_expiry_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    async with SQLiteMemoryStore(path) as store:
        await store.add([_fact("likes rooibos")])
    conn = sqlite3.connect(path)  # take the file back to the layout before expires_at
    conn.execute("DROP INDEX memories_expiry")
    conn.execute("ALTER TABLE memories DROP COLUMN expires_at")
    conn.commit()
    conn.close()
    async with SQLiteMemoryStore(path) as store:
        assert [r.text for r in await store.list(scope=ALICE)] == ["likes rooibos"]
        soon = _fact("is on holiday", expires_at=datetime.now(UTC) - timedelta(seconds=1))
        await store.add([soon])
        assert [r.text for r in await store.list(scope=ALICE)] == ["likes rooibos"]
        assert _rows(path) == 2
        result = await store.prune(older_than=timedelta(days=30))
        assert result.expired == 1
    assert _rows(path) == 1  # deleted, not only hidden


async def test_a_lifetime_per_kind_expires_the_turns_a_component_writes(tmp_path: Path) -> None:
    week = timedelta(days=7)
    path = tmp_path / "memory.sqlite3"
    async with ExpiringMemoryStore(SQLiteMemoryStore(path), ttl={"turn": week}) as store:
        memory = ConversationMemory(store, embedder=None)
        said = [ChatMessage(Role.USER, "My sister Clara lives in Lisbon.")]
        assert await memory.ingest(said, user_id="alice", thread_id="thread_a") == 1
        (turn,) = await store.list(scope=ALICE, kinds=["turn"])
        assert turn.expires_at is not None and turn.expires_at - turn.recorded_at == week

        long_ago = datetime.now(UTC) - timedelta(days=8)
        old_turn = MemoryRecord(kind="turn", text="I sold my bicycle.", scope=ALICE)
        old_turn = replace(old_turn, recorded_at=long_ago)
        old_fact = _fact("sold the bicycle", recorded_at=long_ago)  # no lifetime for facts
        until = datetime.now(UTC) + timedelta(days=365)
        own = MemoryRecord(kind="turn", text="Bicycle shop closed.", scope=ALICE, expires_at=until)
        await store.add([old_turn, old_fact, replace(own, recorded_at=long_ago)])
        found = {h.record.id for h in await store.search("bicycle", scope=ALICE)}
        assert old_fact.id in found and old_turn.id not in found
        assert old_turn.id not in {r.id for r in await store.list(scope=ALICE)}
        kept = await store.get(own.id, scope=ALICE)
        assert kept is not None and kept.expires_at == until  # its own expiry is kept
        result = await store.prune(older_than=timedelta(days=30))
        assert result.expired == 1
    assert _rows(path) == 3  # the old turn is deleted; the new turn, the fact and `own` stay


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ({"turns": timedelta(days=1)}, "kinds are fact, preference, turn, summary"),
        ({"turn": timedelta(0)}, "positive timedelta"),
        ({"turn": timedelta(days=-1)}, "positive timedelta"),
        ({"turn": 3600}, "positive timedelta"),
    ],
)
def test_a_bad_lifetime_is_refused_naming_it(ttl: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ExpiringMemoryStore(InMemoryMemoryStore(), ttl=ttl)  # pyright: ignore[reportArgumentType]
