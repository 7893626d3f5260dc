"""The SQL of a SQLite thread, as functions of an open connection inside the caller's transaction.

``SQLiteChatMessageStore`` runs each of them in a transaction of its own. Other parts that keep
threads in the same file (the server's storage) call them inside *their* transaction, so a turn's
messages and the records that describe it (a response object) commit together or not at all, and
the file holds one layout that ``threadline threads`` and any store of the file can read.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.threads.stores._sqlite_layout import (
    LOG_SCHEMA,
    RECORDS_SCHEMA,
    create_tables,
    layout_of,
)
from threadline.threads.stores._sqlite_rows import Row, checked_tokens, read_after, thread_row
from threadline.threads.stores.base import check_fork_at
from threadline.threads.stores.codec import MessageCodec, corrupt_thread_error, recode

__all__ = [
    "THREAD_SCHEMA",
    "Row",
    "append_rows",
    "delete_thread",
    "fork_thread",
    "migrate_thread_tables",
    "read_after",
]

THREAD_SCHEMA = LOG_SCHEMA + RECORDS_SCHEMA
"""The tables of a new file (the log layout, see ``_sqlite_layout``; files made earlier keep the
keyed one). Bodies are codec records (JSON text by default, ciphertext when encrypted);
``tokens`` is each message's count from the store's token counter, kept for bounded reads. A fork
is a thread row naming its parent and the position it branched at (``fork_version``); it shares
the parent's rows up to there. ``threadline_records`` holds the JSON documents kept beside threads
(:class:`~threadline.threads.stores.records.ThreadRecord`; ``body`` NULL: an unanswered claim)."""


def migrate_thread_tables(conn: sqlite3.Connection) -> None:
    """Create the tables a file lacks, and bring tables written by older versions up to date."""
    create_tables(conn)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(threadline_messages)")}
    if "tokens" not in columns:  # a file written before token counts were stored
        conn.execute("ALTER TABLE threadline_messages ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0")


def append_rows(
    conn: sqlite3.Connection,
    thread_id: str,
    rows: Sequence[tuple[str, int, bytes | str]],
    expected_version: int | None,
) -> int:
    """Append ``(message_id, tokens, record)`` rows, checking the version; returns the new one.

    Runs in the caller's transaction. Raises ``ConcurrentThreadUpdateError`` when the thread's
    version is not ``expected_version`` (nothing written).
    """
    now = time.time()
    info = thread_row(conn, thread_id)
    version = 0 if info is None else info[2]
    if expected_version is not None and expected_version != version:
        raise ConcurrentThreadUpdateError(
            thread_id, expected_version=expected_version, actual_version=version
        )
    if info is None:  # a new thread: its row is written once, with its version (and its key)
        key = _insert_thread(conn, thread_id, len(rows), now)
    else:
        key = info[3]
        conn.execute(
            "UPDATE threadline_threads SET version = ?, updated_at = ? WHERE thread_id = ?",
            (version + len(rows), now, thread_id),
        )
    _insert_messages(conn, thread_id, key, version, rows)
    return version + len(rows)


def _insert_thread(conn: sqlite3.Connection, thread_id: str, version: int, now: float) -> int | str:
    """Write a new thread's row; returns the key its messages name it by."""
    cursor = conn.execute(
        "INSERT INTO threadline_threads (thread_id, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?)",
        (thread_id, version, now, now),
    )
    if layout_of(conn).thread_key == "thread_id":
        return thread_id
    assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
    return cursor.lastrowid


def _insert_messages(
    conn: sqlite3.Connection,
    thread_id: str,
    key: int | str | None,
    version: int,
    rows: Sequence[tuple[str, int, bytes | str]],
) -> None:
    """Store ``(message_id, tokens, record)`` rows at the positions after ``version``."""
    try:
        conn.executemany(
            f"INSERT INTO threadline_messages ({layout_of(conn).message_key}, seq, message_id, "
            "tokens, body) VALUES (?, ?, ?, ?, ?)",
            [
                (key, version + i + 1, mid, tokens, body)
                for i, (mid, tokens, body) in enumerate(rows)
            ],
        )
    except sqlite3.IntegrityError as exc:  # a row already holds a position past version
        raise corrupt_thread_error(
            thread_id, f"messages are stored past its version {version} ({exc})"
        ) from exc


def fork_thread(
    conn: sqlite3.Connection, parent_id: str, child_id: str, at: int | None = None
) -> int:
    """Make ``child_id`` a fork of ``parent_id`` sharing its first ``at`` rows (all when None).

    One row written, no message copied; returns the fork's version. Runs in the caller's
    transaction.

    Raises:
        ValueError: ``at`` is negative or past the parent's version.
        ConcurrentThreadUpdateError: ``child_id`` exists already.
    """
    now = time.time()
    info = thread_row(conn, parent_id)
    version = 0 if info is None else info[2]
    version = check_fork_at(at, version, repr(parent_id))
    if info is None:
        conn.execute(
            "INSERT INTO threadline_threads (thread_id, created_at, updated_at) VALUES (?, ?, ?)",
            (parent_id, now, now),
        )
    existing = thread_row(conn, child_id)
    if existing is not None:
        raise ConcurrentThreadUpdateError(child_id, expected_version=0, actual_version=existing[2])
    conn.execute(
        "INSERT INTO threadline_threads "
        "(thread_id, parent_id, fork_version, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (child_id, parent_id, version, version, now, now),
    )
    return version


def delete_thread(conn: sqlite3.Connection, thread_id: str, codec: MessageCodec) -> None:
    """Delete a thread; its forks keep their history (the shared part is copied to them).

    Rows copied to a fork are re-encoded for it when the codec binds records to their thread
    (encryption). Runs in the caller's transaction.
    """
    children = conn.execute(
        # A thread naming itself as parent (corrupt) is not its own fork to rescue.
        "SELECT thread_id, fork_version FROM threadline_threads "
        "WHERE parent_id = ? AND thread_id != ?",
        (thread_id, thread_id),
    ).fetchall()
    message_key = layout_of(conn).message_key
    for child_id, fork_version in children:
        _, prefix = read_after(conn, thread_id, 0)
        copied: list[tuple[str, int, bytes]] = []
        for seg_id, seq, tokens, body in prefix[:fork_version]:
            tokens = checked_tokens(seg_id, seq, tokens)
            data = body.encode() if isinstance(body, str) else body
            message = codec.decode(data, thread_id=seg_id, record=seq)
            data = recode(codec, data, from_thread=seg_id, to_thread=child_id, record=seq)
            copied.append((message.message_id, tokens, data))
        _insert_messages(conn, child_id, _key_of(conn, child_id), 0, copied)
        conn.execute(
            "UPDATE threadline_threads SET parent_id = NULL, fork_version = 0 WHERE thread_id = ?",
            (child_id,),
        )
    conn.execute(
        f"DELETE FROM threadline_messages WHERE {message_key} = ?", (_key_of(conn, thread_id),)
    )
    conn.execute("DELETE FROM threadline_threads WHERE thread_id = ?", (thread_id,))


def _key_of(conn: sqlite3.Connection, thread_id: str) -> int | str | None:
    """What the thread's messages name it by, read without checking the rest of its row.

    Deleting must work on a thread whose row is damaged (that is when one wants it gone). In the
    log layout a thread without a row has no messages (None matches none).
    """
    key_column = layout_of(conn).thread_key
    if key_column == "thread_id":
        return thread_id
    row = conn.execute(
        f"SELECT {key_column} FROM threadline_threads WHERE thread_id = ?", (thread_id,)
    ).fetchone()
    return None if row is None else row[0]
