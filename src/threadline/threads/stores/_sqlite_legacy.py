"""SQLite files written by earlier threadline versions: brought up to date, or refused with the fix.

Three earlier layouts exist, all from the server:

* thread tables without token counts: a column is added (every store does this on open);
* objects and idempotency answers in ``tl_objects`` / ``tl_idempotency``: moved into
  ``threadline_records`` on open, in one transaction (lossless, so no flag is needed);
* conversation items in ``tl_items``, before conversations were threads: refused with the fix named
  (``--migrate``), or moved into threads once, in one transaction; a crash during the move leaves
  the old layout whole.
"""

from __future__ import annotations

import json
import os
import sqlite3

from threadline._sqlite import immediate_transaction
from threadline.exceptions import StoreError
from threadline.history import estimate_tokens
from threadline.threads.stores.codec import JSONCodec
from threadline.threads.stores.sqlite_tables import append_rows, migrate_thread_tables
from threadline.types.messages import ChatMessage

__all__ = ["OLD_LAYOUT_FIX", "check_items", "migrate_items", "refuse_old_layout", "upgrade"]

_CODEC = JSONCodec()

OLD_LAYOUT_FIX = (
    "run `threadline serve --store sqlite:PATH --migrate` once (or open it with "
    "open_database('sqlite:PATH', migrate=True)) to move its conversations into threads"
)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _old_items(conn: sqlite3.Connection) -> int | None:
    """How many items a database of the earliest layout holds in ``tl_items``; None if none."""
    if not _has_table(conn, "tl_items"):
        return None
    return int(conn.execute("SELECT COUNT(*) FROM tl_items").fetchone()[0])


def _refusal(conn: sqlite3.Connection, count: int) -> StoreError:
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    return StoreError(
        f"server database {path!r} was made by an earlier threadline: {count} conversation "
        f"items are in its old table tl_items, which this version does not read; {OLD_LAYOUT_FIX}"
    )


def refuse_old_layout(path: str) -> None:
    """Refuse, at once, a file holding ``tl_items`` (not on the first request it would fail).

    Raises:
        StoreError: the file holds items in the earliest layout; the message names the fix.
    """
    if path == ":memory:" or not os.path.exists(path):
        return
    try:
        conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        try:
            count = _old_items(conn)
            if count:
                raise _refusal(conn, count)
        finally:
            conn.close()
    except sqlite3.Error:
        return  # not readable as SQLite here: the worker reports it with the file's name


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring a file up to date on open: token counts, records; an empty ``tl_items`` dropped."""
    migrate_thread_tables(conn)
    if _has_table(conn, "tl_objects"):
        _move_objects(conn)
    if _old_items(conn) == 0:
        conn.execute("DROP TABLE tl_items")


def _move_objects(conn: sqlite3.Connection) -> None:
    """``tl_objects`` and ``tl_idempotency`` rows become records, in one transaction."""
    with immediate_transaction(conn):
        if not _has_table(conn, "tl_objects"):  # another process moved them meanwhile
            return
        conn.execute(
            "INSERT OR REPLACE INTO threadline_records "
            "(kind, owner, id, thread_id, parent, body, created_at) "
            "SELECT kind, owner, id, container, parent, "
            "CASE WHEN upto IS NULL THEN body ELSE json_set(body, '$._upto', upto) END, "
            "created_at FROM tl_objects"
        )
        if _has_table(conn, "tl_idempotency"):
            conn.execute(
                "INSERT OR REPLACE INTO threadline_records (kind, owner, id, body, created_at) "
                "SELECT 'idempotency', owner, key, CASE WHEN status IS NULL THEN NULL ELSE "
                "json_object('status', status, 'body', json(body)) END, created_at "
                "FROM tl_idempotency"
            )
            conn.execute("DROP TABLE tl_idempotency")
        conn.execute("DROP TABLE tl_objects")


def migrate_items(conn: sqlite3.Connection) -> None:
    """Move ``tl_items`` into thread tables in one transaction; refuse a clash of ids.

    Raises:
        StoreError: a container of ``tl_items`` is also a thread already, or its items are not
            numbered 1 to n (a thread with a gap could not be read).
    """
    if _old_items(conn) is None:
        return
    with immediate_transaction(conn):
        containers = conn.execute(
            "SELECT container, MAX(seq) FROM tl_items GROUP BY container"
        ).fetchall()
        for container, version in containers:
            row = conn.execute(
                "SELECT version FROM threadline_threads WHERE thread_id = ?", (container,)
            ).fetchone()
            if row is not None and row[0]:
                raise StoreError(
                    f"cannot migrate: container {container!r} is both in tl_items and a thread"
                )
            conn.execute("DELETE FROM threadline_threads WHERE thread_id = ?", (container,))
            rows = [
                (message.message_id, estimate_tokens(message),
                 _CODEC.encode(message, thread_id=container))
                for message in (
                    ChatMessage.from_dict(json.loads(body))
                    for (body,) in conn.execute(
                        "SELECT body FROM tl_items WHERE container = ? ORDER BY seq", (container,)
                    ).fetchall()
                )
            ]  # fmt: skip
            if len(rows) != version:
                raise StoreError(
                    f"cannot migrate: container {container!r} has {len(rows)} items in tl_items "
                    f"but its last is numbered {version}"
                )
            append_rows(conn, container, rows, 0)
        conn.execute("DROP TABLE tl_items")


def check_items(conn: sqlite3.Connection) -> None:
    """Refuse a file holding ``tl_items`` items (``StoreError`` naming the fix)."""
    count = _old_items(conn)
    if count:
        raise _refusal(conn, count)
