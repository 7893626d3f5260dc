"""The thread SQL of the PostgreSQL server storage, run inside its transactions.

The tables are ``PostgresChatMessageStore``'s (``threadline_threads``/``threadline_messages`` of
the storage's schema, reached through the connection's ``search_path``), so any store of that
schema reads a server conversation; the writes here run in the storage's own transaction, which
also writes the turn's objects, so a turn commits whole or not at all. Records are the JSON
codec's (a message's JSON form, UTF-8), so no record is bound to its thread and copying a shared
prefix to a fork is a plain row copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.exceptions import StoreError
from threadline.hosting.storage.base import ItemsChangedError
from threadline.hosting.storage.sqlite_layout import OLD_LAYOUT_FIX

__all__ = ["append_rows", "check_layout", "fork", "rewrite"]


async def _version(conn: Any, thread_id: str, *, lock: bool) -> int | None:
    cur = await conn.execute(
        "SELECT version FROM threadline_threads WHERE thread_id = %s"
        + (" FOR UPDATE" if lock else ""),
        (thread_id,),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def append_rows(
    conn: Any, thread_id: str, rows: Sequence[tuple[str, int, str]], expected: int | None
) -> int:
    """Append ``(message_id, tokens, record)`` rows, checking the version; the new version."""
    version = await _version(conn, thread_id, lock=True)
    if version is None:
        await conn.execute("INSERT INTO threadline_threads (thread_id) VALUES (%s)", (thread_id,))
        version = 0
    if expected is not None and version != expected:
        raise ItemsChangedError(f"container {thread_id!r} has {version} items, expected {expected}")
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO threadline_messages (thread_id, seq, message_id, tokens, body) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    (thread_id, version + i + 1, mid, tokens, body.encode())
                    for i, (mid, tokens, body) in enumerate(rows)
                ],
            )
    version += len(rows)
    await conn.execute(
        "UPDATE threadline_threads SET version = %s, updated_at = now() WHERE thread_id = %s",
        (version, thread_id),
    )
    return version


async def fork(conn: Any, parent: str, child: str, at: int) -> None:
    """Make ``child`` a fork of ``parent`` sharing its first ``at`` rows (one row written)."""
    version = await _version(conn, parent, lock=False)
    if version is None or not 0 <= at <= version:
        raise ItemsChangedError(f"container {parent!r} no longer holds {at} items")
    if await _version(conn, child, lock=False) is not None:
        raise ItemsChangedError(f"branch {child!r} exists already")
    await conn.execute(
        "INSERT INTO threadline_threads (thread_id, parent_id, fork_version, version) "
        "VALUES (%s, %s, %s, %s)",
        (child, parent, at, at),
    )


async def rewrite(
    conn: Any, thread_id: str, rows: Sequence[tuple[str, int, str]], expected: int
) -> None:
    """Replace a thread's messages if it holds ``expected``; its forks first copy what they share.

    Raises:
        StoreError: the thread is itself a fork (conversations never are).
    """
    version = await _version(conn, thread_id, lock=True)
    if (version or 0) != expected:
        raise ItemsChangedError(
            f"container {thread_id!r} has {version or 0} items, expected {expected}"
        )
    cur = await conn.execute(
        "SELECT parent_id FROM threadline_threads WHERE thread_id = %s", (thread_id,)
    )
    row = await cur.fetchone()
    if row is not None and row[0] is not None:
        raise StoreError(f"container {thread_id!r} is a fork; its items cannot be rewritten")
    cur = await conn.execute(
        "SELECT thread_id, fork_version FROM threadline_threads "
        "WHERE parent_id = %s AND thread_id <> %s FOR UPDATE",
        (thread_id, thread_id),
    )
    for child, fork_version in await cur.fetchall():
        await conn.execute(
            "INSERT INTO threadline_messages (thread_id, seq, message_id, tokens, body) "
            "SELECT %s, seq, message_id, tokens, body FROM threadline_messages "
            "WHERE thread_id = %s AND seq <= %s",
            (child, thread_id, fork_version),
        )
        await conn.execute(
            "UPDATE threadline_threads SET parent_id = NULL, fork_version = 0 WHERE thread_id = %s",
            (child,),
        )
    await conn.execute("DELETE FROM threadline_messages WHERE thread_id = %s", (thread_id,))
    await conn.execute("DELETE FROM threadline_threads WHERE thread_id = %s", (thread_id,))
    await append_rows(conn, thread_id, rows, 0)


async def check_layout(conn: Any, *, migrate: bool) -> None:
    """Refuse (or, with ``migrate``, move into threads) a schema of the previous layout."""
    cur = await conn.execute("SELECT to_regclass('tl_items') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return
    cur = await conn.execute("SELECT COUNT(*) FROM tl_items")
    count = int((await cur.fetchone())[0])
    if count and not migrate:
        raise StoreError(
            f"this PostgreSQL schema was made by an earlier threadline: {count} conversation "
            f"items are in its old table tl_items, which this version does not read; "
            + OLD_LAYOUT_FIX.replace("sqlite:PATH", "postgresql://...").replace(
                "SQLiteServerStorage(path", "PostgresServerStorage(url"
            )
        )
    await conn.execute(
        "INSERT INTO threadline_threads (thread_id, version) "
        "SELECT container, MAX(seq) FROM tl_items GROUP BY container"
    )
    await conn.execute(
        "INSERT INTO threadline_messages (thread_id, seq, message_id, tokens, body) "
        "SELECT container, seq, body::json->>'message_id', 4 + length(body) / 4, "
        "convert_to(body, 'UTF8') FROM tl_items"
    )
    await conn.execute("DROP TABLE tl_items")
