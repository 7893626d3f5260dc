"""The SQL of a prune of a SQLite file's threads: check and delete in one write transaction.

``BEGIN IMMEDIATE`` takes the file's write lock before the age of any thread is read, so an
append (in this process or another) lands either before the check, making its thread new, or
after the delete, finding the thread gone (an append with ``expected_version`` then fails with
``ConcurrentThreadUpdateError``; one without starts the thread anew). Either way no message that
was kept is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from threadline._sqlite import immediate_transaction
from threadline.threads.stores._sqlite_layout import layout_of
from threadline.threads.stores.retention import PruneResult, plan_prune

__all__ = ["prune_threads", "vacuum_free_pages"]

_IDS = "SELECT thread_id FROM temp.threadline_prune"


def prune_threads(
    conn: sqlite3.Connection, cutoff: float, dry_run: bool, expire_kinds: Sequence[str]
) -> PruneResult:
    """Delete threads last updated before ``cutoff`` (unless a kept fork reads them)."""
    with immediate_transaction(conn):
        rows = conn.execute(
            "SELECT thread_id, parent_id, updated_at < ? FROM threadline_threads "
            "WHERE updated_at < ? OR parent_id IS NOT NULL",
            (cutoff, cutoff),
        ).fetchall()
        doomed, kept = plan_prune((tid, parent, bool(old)) for tid, parent, old in rows)
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS threadline_prune (thread_id TEXT PRIMARY KEY)"
        )
        conn.execute("DELETE FROM temp.threadline_prune")
        conn.executemany(
            "INSERT OR IGNORE INTO temp.threadline_prune VALUES (?)", [(t,) for t in doomed]
        )
        layout = layout_of(conn)
        messages_of_doomed = (
            f"FROM threadline_messages WHERE {layout.message_key} IN (SELECT {layout.thread_key} "
            f"FROM threadline_threads WHERE thread_id IN ({_IDS}))"
        )
        (messages,) = conn.execute(f"SELECT count(*) {messages_of_doomed}").fetchone()
        # A thread's records, and the records filed under them (an Assistants run's messages).
        owned = conn.execute(
            f"SELECT owner, id FROM threadline_records WHERE thread_id IN ({_IDS})"
        ).fetchall()
        under = conn.execute(
            "SELECT r.kind, r.owner, r.id FROM threadline_records r JOIN threadline_records t "
            f"ON r.owner = t.owner AND r.parent = t.id WHERE t.thread_id IN ({_IDS}) "
            "AND (r.thread_id IS NULL OR r.thread_id NOT IN (SELECT thread_id FROM "
            "temp.threadline_prune))"
        ).fetchall()
        marks = ",".join("?" * len(expire_kinds))
        expired: list[tuple[str, str, str]] = (
            conn.execute(
                f"SELECT kind, owner, id FROM threadline_records WHERE kind IN ({marks}) "
                "AND created_at < ? AND (thread_id IS NULL OR thread_id NOT IN "
                f"({_IDS}))",
                (*expire_kinds, cutoff),
            ).fetchall()
            if expire_kinds
            else []
        )
        extra = {tuple(r) for r in under} | {tuple(r) for r in expired}
        if not dry_run:
            conn.execute(f"DELETE {messages_of_doomed}")
            conn.executemany(
                "DELETE FROM threadline_records WHERE kind = ? AND owner = ? AND id = ?",
                sorted(extra),
            )
            conn.execute(f"DELETE FROM threadline_records WHERE thread_id IN ({_IDS})")
            conn.execute(f"DELETE FROM threadline_threads WHERE thread_id IN ({_IDS})")
        conn.execute("DELETE FROM temp.threadline_prune")
    return PruneResult(
        cutoff=cutoff,
        threads=tuple(doomed),
        kept_for_forks=tuple(kept),
        messages=int(messages),
        records=len(owned) + len(extra),
        dry_run=dry_run,
    )


def vacuum_free_pages(conn: sqlite3.Connection) -> int:
    """Give a file's free pages back to the file system, if it was made for that; pages freed.

    Files threadline creates use ``auto_vacuum = INCREMENTAL``, so this shrinks them. Older
    files (``auto_vacuum = NONE``, changeable only by a full ``VACUUM`` that rewrites the file
    under an exclusive lock) keep their size, and later writes reuse the free pages instead.
    """
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    if mode != 2 or not free:  # 2: INCREMENTAL
        return 0
    # ``executescript`` steps the pragma to the end; ``execute`` would free one page per call.
    conn.executescript("PRAGMA incremental_vacuum;")
    (left,) = conn.execute("PRAGMA freelist_count").fetchone()
    # In WAL mode the file shrinks when the log is copied back; don't wait for readers to leave.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    return int(free) - int(left)
