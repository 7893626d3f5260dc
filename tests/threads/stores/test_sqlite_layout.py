"""The layout of a new SQLite thread file (issue 16): one append-ordered messages table, 1 KB pages.

What a turn costs in bytes is measured by ``bench/stores.py``; these tests pin the shape that
makes it cheap, and that files made before keep theirs (the conformance and retention kits run
on such a file too: ``TestSQLiteStoreInAFileFromBefore``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from tests._sqlite_sql import make_keyed_file
from threadline._sqlite import Connection
from threadline.threads.stores._sqlite_layout import KEYED, LOG, create_tables, layout_of
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types.messages import ChatMessage, Role


def _turn(text: str) -> list[ChatMessage]:
    return [ChatMessage(Role.USER, text), ChatMessage(Role.ASSISTANT, f"re: {text}")]


async def test_turns_of_every_thread_land_at_the_end_of_one_table(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    a, b = SQLiteChatMessageStore(db, "thread_a"), SQLiteChatMessageStore(db, "thread_b")
    for i in range(3):
        await a.add_messages(_turn(f"a{i}"))
        await b.add_messages(_turn(f"b{i}"))
    await a.aclose()
    await b.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (1024,)
        written = conn.execute(
            "SELECT t.thread_id, m.seq FROM threadline_messages m "
            "JOIN threadline_threads t ON t.num = m.thread ORDER BY m.id"
        ).fetchall()
    # In the order written, whatever thread: a turn appends to the table's last page.
    assert written == [
        (tid, seq)
        for i in range(3)
        for tid in ("thread_a", "thread_b")
        for seq in (2 * i + 1, 2 * i + 2)
    ]


def test_two_connections_making_one_new_file_make_one_layout(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    start = threading.Barrier(2)
    layouts: list[object] = []

    def open_file() -> None:
        conn = sqlite3.connect(db, isolation_level=None, factory=Connection)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            start.wait()
            layouts.append(create_tables(conn))
        finally:
            conn.close()

    workers = [threading.Thread(target=open_file) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert layouts == [LOG, LOG]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert layout_of(conn) is LOG


async def test_a_file_from_before_keeps_its_layout_and_pages(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    make_keyed_file(db)
    store = SQLiteChatMessageStore(db, "thread_old")
    await store.add_messages(_turn("kept as before"))
    branch = await store.fork(at=1)
    await branch.add_messages(_turn("branched"))
    await store.delete()  # the fork gets its copy of the shared message
    assert [m.text for m in await branch.list_messages()] == [
        "kept as before",
        "branched",
        "re: branched",
    ]
    await store.aclose()
    await branch.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert layout_of(conn) is KEYED
        assert conn.execute("PRAGMA page_size").fetchone() == (2048,)
        rows = conn.execute(
            "SELECT thread_id, seq FROM threadline_messages ORDER BY seq"
        ).fetchall()
    assert rows == [(branch.thread_id, 1), (branch.thread_id, 2), (branch.thread_id, 3)]
