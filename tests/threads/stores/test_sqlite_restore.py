"""Restoring a SQLite thread state opens an existing threadline database, nothing else.

A thread state travels (files, requests) and names a path; before, restoring it created folders
and a database wherever it pointed, or added threadline's tables to any SQLite file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from threadline import ChatAgent, ScriptedChatClient
from threadline.exceptions import ThreadStateError
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.threads.thread import AgentThread
from threadline.types import ChatMessage, Role


def state_for(path: str, thread_id: str = "thread_1") -> dict[str, object]:
    return {
        "type": "threadline.thread",
        "schema_version": 1,
        "thread_id": thread_id,
        "binding": {},
        "store": {"kind": "sqlite", "state": {"path": path, "thread_id": thread_id}},
    }


async def restore(state: dict[str, object]) -> AgentThread:
    return await ChatAgent(ScriptedChatClient([])).deserialize_thread(state)


async def test_a_missing_path_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "made" / "up" / "threads.db"
    with pytest.raises(ThreadStateError, match=r"made/up/threads\.db.*never creates") as info:
        await restore(state_for(str(target)))
    assert "cannot be opened" in str(info.value)
    assert not (tmp_path / "made").exists()


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ThreadStateError, match=str(tmp_path)):
        await restore(state_for(str(tmp_path)))


async def test_a_file_of_another_kind_is_left_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes, not a database\n")
    with pytest.raises(ThreadStateError, match=r"notes\.txt.*not a SQLite database"):
        await restore(state_for(str(notes)))
    assert notes.read_bytes() == b"my notes, not a database\n"


async def test_another_programs_sqlite_database_is_not_converted(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO accounts (name) VALUES ('alice')")
    conn.close()
    before = other.read_bytes()
    with pytest.raises(ThreadStateError, match=r"app\.db.*without threadline's threads"):
        await restore(state_for(str(other)))
    assert other.read_bytes() == before
    conn = sqlite3.connect(other)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"accounts"}


async def test_a_saved_thread_restores_without_a_factory(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    store = SQLiteChatMessageStore(path, thread_id="thread_1")
    await store.add_messages([ChatMessage(Role.USER, "hello")])
    state = await AgentThread(message_store=store, thread_id="thread_1").serialize()
    thread = await restore(state)
    assert thread.message_store is not None
    assert [m.text for m in await thread.message_store.list_messages()] == ["hello"]


async def test_a_thread_serialized_before_its_first_message_restores(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "threads.db"
    store = SQLiteChatMessageStore(path)
    state = await AgentThread(message_store=store, thread_id=store.thread_id).serialize()
    assert path.is_file()  # serializing made the database its state refers to
    thread = await restore(state)
    assert thread.message_store is not None
    assert await thread.message_store.list_messages() == []


def test_from_state_checks_too(tmp_path: Path) -> None:
    with pytest.raises(ThreadStateError, match="never creates"):
        SQLiteChatMessageStore.from_state({"path": str(tmp_path / "x.db"), "thread_id": "t"})
    assert not (tmp_path / "x.db").exists()
