"""The SQLite server file's layout: item rows for the thread tables, and the previous layout.

Before conversations were threads, the server kept their items in its own table ``tl_items``. A
file of that layout is refused with the fix named (``--migrate``), or moved into threads once, in
one transaction: a crash during the move leaves the old layout whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from threadline._sqlite import immediate_transaction
from threadline.exceptions import StoreError
from threadline.threads.stores.sqlite_tables import migrate_thread_tables

__all__ = [
    "OLD_LAYOUT_FIX",
    "check_layout",
    "item_rows",
    "migrate_layout",
    "old_layout_items",
    "refuse_old_layout",
    "thread_version",
]


def item_rows(items: Sequence[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """Message-store rows ``(message_id, tokens, record)``: the JSON codec's record, its count."""
    rows: list[tuple[str, int, str]] = []
    for item in items:
        body = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        message_id = item.get("message_id")
        if not isinstance(message_id, str):
            raise ValueError(f"an item has no message_id: {body[:200]}")
        # About four characters per token: the message store's default estimate, for bounded reads.
        rows.append((message_id, 4 + len(body) // 4, body))
    return rows


def thread_version(conn: sqlite3.Connection, container: str) -> int:
    """The thread's message count (0 when it does not exist)."""
    row = conn.execute(
        "SELECT version FROM threadline_threads WHERE thread_id = ?", (container,)
    ).fetchone()
    return 0 if row is None else int(row[0])


OLD_LAYOUT_FIX = (
    "run `threadline serve --store sqlite:PATH --migrate` once (or open it with "
    "SQLiteServerStorage(path, migrate=True)) to move its conversations into threads"
)


def old_layout_items(conn: sqlite3.Connection) -> int | None:
    """How many items a database of the previous layout holds in ``tl_items``; None if none."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tl_items'"
    ).fetchone()
    if found is None:
        return None
    return int(conn.execute("SELECT COUNT(*) FROM tl_items").fetchone()[0])


def refuse_old_layout(path: str) -> None:
    """Refuse, at once, a file of the previous layout (not on the first request it would fail)."""
    if path == ":memory:" or not os.path.exists(path):
        return
    try:
        conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        try:
            check_layout(conn, read_only=True)
        finally:
            conn.close()
    except sqlite3.Error:
        return  # not readable as SQLite here: the worker reports it with the file's name


def check_layout(conn: sqlite3.Connection, *, read_only: bool = False) -> None:
    """Refuse a file holding previous-layout items (``StoreError`` naming the fix).

    An empty ``tl_items`` left by an earlier version is dropped (unless ``read_only``).
    """
    if not read_only:
        migrate_thread_tables(conn)
    count = old_layout_items(conn)
    if count:
        raise StoreError(
            f"server database {conn.execute('PRAGMA database_list').fetchone()[2]!r} was made by "
            f"an earlier threadline: {count} conversation "
            f"items are in its old table tl_items, which this version does not read; "
            f"{OLD_LAYOUT_FIX}"
        )
    if count == 0 and not read_only:
        conn.execute("DROP TABLE tl_items")


def migrate_layout(conn: sqlite3.Connection) -> None:
    """Move ``tl_items`` into thread tables in one transaction (a crash leaves the old layout)."""
    migrate_thread_tables(conn)
    if old_layout_items(conn) is None:
        return
    with immediate_transaction(conn):
        now = time.time()
        containers = conn.execute(
            "SELECT container, MAX(seq) FROM tl_items GROUP BY container"
        ).fetchall()
        for container, version in containers:
            if thread_version(conn, container):
                raise StoreError(
                    f"cannot migrate: container {container!r} is both in tl_items and a thread"
                )
            conn.execute(
                "INSERT OR REPLACE INTO threadline_threads "
                "(thread_id, version, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (container, version, now, now),
            )
        for container, seq, body in conn.execute(
            "SELECT container, seq, body FROM tl_items ORDER BY container, seq"
        ).fetchall():
            item = json.loads(body)
            ((message_id, tokens, record),) = item_rows([item])
            conn.execute(
                "INSERT INTO threadline_messages (thread_id, seq, message_id, tokens, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (container, seq, message_id, tokens, record),
            )
        conn.execute("DROP TABLE tl_items")
