"""Reading a SQLite thread's rows across its fork ancestors, checking them as they are read.

SQLite keeps any value in any column, and a database file can be edited by anything, so every
value the reads rely on is checked: a fork chain that loops, a version or token count of the
wrong type, rows missing below the version. Each is a ``StoreError`` naming the thread (and the
record), never a hang, a ``TypeError`` or a version conflict that repeats forever.
"""

from __future__ import annotations

import sqlite3

from threadline.exceptions import StoreError
from threadline.threads.stores._sqlite_layout import layout_of
from threadline.threads.stores.codec import corrupt_record_error, corrupt_thread_error

__all__ = [
    "Row",
    "Segment",
    "ThreadRow",
    "checked_tokens",
    "read_after",
    "read_budget",
    "thread_row",
]

ThreadRow = tuple[str | None, int, int, int | str]
"""A thread's ``(parent, fork_version, version, key)``; ``key`` is what its messages name it by
(its ``num`` in the log layout, its id in the keyed one, see ``_sqlite_layout``)."""


def thread_row(conn: sqlite3.Connection, thread_id: str) -> ThreadRow | None:
    """The thread's ``(parent, fork_version, version, key)``, checked (SQLite keeps any type).

    Raises:
        StoreError: the row holds values of the wrong type or out of range (written by hand or
            by another program); the message names the thread and the field.
    """
    key_column = layout_of(conn).thread_key
    row = conn.execute(
        f"SELECT parent_id, fork_version, version, {key_column} FROM threadline_threads "
        "WHERE thread_id = ?",
        (thread_id,),
    ).fetchone()
    if row is None:
        return None
    parent, fork_version, version, key = row
    if type(version) is not int or version < 0:
        raise corrupt_thread_error(thread_id, f"its version is {version!r}, not a count")
    if type(fork_version) is not int or not 0 <= fork_version <= version:
        raise corrupt_thread_error(
            thread_id, f"its fork point is {fork_version!r}, not a count up to {version}"
        )
    if parent is not None and (type(parent) is not str or not parent):
        raise corrupt_thread_error(thread_id, f"its fork parent is {parent!r}, not a thread id")
    return parent, fork_version, version, key


def checked_tokens(thread_id: str, seq: object, tokens: object) -> int:
    """A row's token count, checked (a count stored as text would break every bounded read)."""
    if type(tokens) is not int or tokens < 0:
        raise corrupt_record_error(thread_id, _seq(seq), f"its token count is {tokens!r}")
    return tokens


def _seq(seq: object) -> int:
    return seq if type(seq) is int else -1


Segment = tuple[str, int | str, int, int]
"""A stretch of a thread's history kept under one thread: (thread id, its key, after seq, up to
seq)."""


def _chain(conn: sqlite3.Connection, thread_id: str) -> tuple[int, list[Segment]]:
    """The thread's version and its segments, newest first, following fork parents.

    Raises:
        StoreError: the fork parents loop back (a thread is its own ancestor), or an ancestor the
            history needs is missing; both mean corrupt data, which no retry can fix.
    """
    info = thread_row(conn, thread_id)
    if info is None:
        return 0, []
    version = info[2]
    segments: list[Segment] = []
    seen: list[str] = []
    current: str | None = thread_id
    hi = version
    while current is not None and hi > 0:
        if current in seen:
            loop = " -> ".join(repr(t) for t in [*seen, current])
            raise corrupt_thread_error(thread_id, f"its fork parents form a loop ({loop})")
        seen.append(current)
        row = info if current == thread_id else thread_row(conn, current)
        if row is None:
            raise corrupt_thread_error(
                thread_id,
                f"its fork ancestor {current!r} holding messages 1 to {hi} is missing",
            )
        parent, lo, _, key = row
        if hi > lo:
            segments.append((current, key, lo, hi))
        current, hi = parent, min(hi, lo)
    return version, segments


Row = tuple[str, int, int, bytes | str]
"""A stored message as read: (thread id it is kept under, position, token count, record)."""


def read_after(conn: sqlite3.Connection, thread_id: str, after: int) -> tuple[int, list[Row]]:
    """The version and every row after position ``after``, oldest first.

    Raises:
        StoreError: rows are missing below the thread's version. Left alone, every later turn
            would fail its version check (the history read is shorter than the version).
    """
    version, segments = _chain(conn, thread_id)
    rows: list[Row] = []
    sql = (
        "SELECT seq, tokens, body FROM threadline_messages "
        f"WHERE {layout_of(conn).message_key} = ? AND seq > ? AND seq <= ? ORDER BY seq"
    )
    for seg_id, key, lo, hi in reversed(segments):
        if hi <= after:
            continue
        start = len(rows)
        rows.extend(
            (seg_id, seq, tokens, body)
            for seq, tokens, body in conn.execute(sql, (key, max(lo, after), hi))
        )
        expected = hi - max(lo, after)
        if len(rows) - start != expected:
            raise _missing_rows(thread_id, seg_id, version, expected, len(rows) - start)
    return version, rows


def _missing_rows(
    thread_id: str, seg_id: str, version: int, expected: int, found: int
) -> StoreError:
    where = "" if seg_id == thread_id else f" (in its fork ancestor {seg_id!r})"
    return corrupt_thread_error(
        thread_id,
        f"its version says {version} messages, but {found} of the {expected} expected "
        f"rows{where} are stored",
    )


_PAGE = 64


def read_budget(conn: sqlite3.Connection, thread_id: str, max_tokens: int) -> list[Row]:
    """The newest rows whose token counts fit ``max_tokens``, oldest first, read page by page."""
    version, segments = _chain(conn, thread_id)
    kept: list[Row] = []
    used = 0
    sql = (
        "SELECT seq, tokens, body FROM threadline_messages "
        f"WHERE {layout_of(conn).message_key} = ? AND seq > ? AND seq <= ? "
        "ORDER BY seq DESC LIMIT ?"
    )
    for seg_id, key, lo, hi in segments:
        top = hi
        while top > lo:
            page = conn.execute(sql, (key, lo, top, _PAGE)).fetchall()
            if not page or page[0][0] != top or page[-1][0] != top - len(page) + 1:
                # A gap: the rows do not match the version (see _read_after).
                raise _missing_rows(thread_id, seg_id, version, top - lo, len(page))
            for seq, tokens, body in page:
                used += checked_tokens(seg_id, seq, tokens)
                if used > max_tokens:
                    kept.reverse()
                    return kept
                kept.append((seg_id, seq, tokens, body))
            top = page[-1][0] - 1
    kept.reverse()
    return kept
