"""SQLite-specific promises: where the file lives, and that forgetting leaves no trace in it."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.memory.stores import SQLiteMemoryStore

ALICE = MemoryScope(user_id="alice")
BOB = MemoryScope(user_id="bob")


async def test_default_file_is_under_threadline_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_HOME", str(tmp_path / "home"))
    store = SQLiteMemoryStore()
    try:
        await store.add([MemoryRecord(kind="fact", text="likes tea", scope=ALICE)])
    finally:
        await store.aclose()
    assert store.path == str(tmp_path / "home" / "memory.sqlite3")
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


async def test_forget_leaves_no_bytes_of_the_user_in_the_file(tmp_path: Path) -> None:
    """Not only unfindable: the words are gone from the index segments and freed pages."""
    path = tmp_path / "memory.db"
    store = SQLiteMemoryStore(path)
    secret = "xylophonequasar"
    try:
        await store.add(
            [
                MemoryRecord(kind="fact", text=f"alice's codeword is {secret} {i}", scope=ALICE)
                for i in range(50)
            ]
            + [MemoryRecord(kind="fact", text="bob's codeword is marigold", scope=BOB)]
        )
        assert await store.forget(user_id="alice") == 50
        assert [h.text for h in await store.search("codeword", scope=BOB)] == [
            "bob's codeword is marigold"
        ]
    finally:
        await store.aclose()
    wal = Path(f"{path}-wal")
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")  # noqa: ASYNC240
    assert secret.encode() not in data
    assert b"alice" not in data
    assert b"marigold" in data


async def test_lexical_only_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.memory.stores import _common

    monkeypatch.setattr(_common, "_warned_lexical", False)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        first, second = SQLiteMemoryStore(tmp_path / "a.db"), SQLiteMemoryStore(tmp_path / "b.db")
    await first.aclose()
    await second.aclose()
    notes = [r.getMessage() for r in caplog.records if "lexical only" in r.getMessage()]
    assert len(notes) == 1
    assert "threadline[memory]" in notes[0]
