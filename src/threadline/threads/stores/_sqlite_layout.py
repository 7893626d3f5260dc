"""The two layouts of a SQLite file's thread tables: which one a file has, and making a new one.

**Log** (files created since issue 16): messages are appended to one table in the order they
were written (``id INTEGER PRIMARY KEY``), each naming its thread by a small integer (the thread
row's ``num``), with a unique index on ``(thread, seq)`` for reads. A turn then lands at the end
of that table whichever thread it belongs to, so it rewrites the table's last page (plus a new
one now and then), one leaf of the small index and the thread's row. 1 KB pages make each of
those pages cheap: a turn on a 10,000-message thread writes about 7 KB.

**Keyed** (files from before): messages are a ``WITHOUT ROWID`` table keyed by
``(thread_id TEXT, seq)``. A turn lands in the middle of that B-tree (after its own thread's rows,
before the next thread's), where SQLite keeps pages full: inserting there keeps rebalancing the
leaf and its neighbours, and a turn writes 12-14 KB (2 KB pages), 24 KB with many threads.

Files are never converted: a file keeps the layout it was created with, and every query reads
the layout's two names (:class:`Layout`), so both are served by the same SQL. An older threadline
opening a log file fails its first message query ("no such column: thread_id") instead of
writing beside the log.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from threadline._sqlite import Connection, immediate_transaction

__all__ = [
    "KEYED",
    "KEYED_SCHEMA",
    "LOG",
    "LOG_SCHEMA",
    "RECORDS_SCHEMA",
    "Layout",
    "create_tables",
    "layout_of",
]


@dataclass(frozen=True, slots=True)
class Layout:
    """The names that differ between the layouts; every other name is shared."""

    name: str
    thread_key: str
    """The column of ``threadline_threads`` that messages name their thread by."""
    message_key: str
    """The column of ``threadline_messages`` holding that key."""


LOG = Layout("log", thread_key="num", message_key="thread")
KEYED = Layout("keyed", thread_key="thread_id", message_key="thread_id")

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_threads (
    num          INTEGER PRIMARY KEY,
    thread_id    TEXT NOT NULL UNIQUE,
    parent_id    TEXT,
    fork_version INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS threadline_messages (
    id         INTEGER PRIMARY KEY,
    thread     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    tokens     INTEGER NOT NULL DEFAULT 0,
    body       BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS threadline_messages_seq ON threadline_messages (thread, seq);
"""
"""The thread tables of a new file. ``num`` is an explicit ``INTEGER PRIMARY KEY`` so that no
``VACUUM`` can renumber it under the messages naming it; without ``AUTOINCREMENT`` the number of a
deleted thread may be given again, which is safe because its messages go in the same transaction.
"""

KEYED_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_threads (
    thread_id    TEXT PRIMARY KEY,
    parent_id    TEXT,
    fork_version INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS threadline_messages (
    thread_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    tokens     INTEGER NOT NULL DEFAULT 0,
    body       BLOB NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
"""
"""The thread tables of files made before the log layout: only ever completed here (a file
holding one of them), never created anew; tests make such files with it."""

RECORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_records (
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    id         TEXT NOT NULL,
    thread_id  TEXT,
    parent     TEXT,
    body       TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, owner, id)
);
CREATE INDEX IF NOT EXISTS threadline_records_list
    ON threadline_records (owner, kind, parent, created_at);
"""
"""The JSON documents kept beside threads, the same in both layouts."""

_FACT = "thread_layout"


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _detect(conn: sqlite3.Connection) -> Layout:
    """The layout the file's tables have; a file without them gets the log layout."""
    messages = _columns(conn, "threadline_messages")
    if messages:
        return KEYED if "thread_id" in messages else LOG
    threads = _columns(conn, "threadline_threads")
    return KEYED if threads and "num" not in threads else LOG


def layout_of(conn: sqlite3.Connection) -> Layout:
    """The layout of the file ``conn`` is open on; looked up once per threadline connection."""
    if not isinstance(conn, Connection):
        return _detect(conn)  # a plain sqlite3 connection (a test's): asked each time
    known = conn.facts.get(_FACT)
    if isinstance(known, Layout):
        return known
    layout = conn.facts[_FACT] = _detect(conn)
    return layout


def create_tables(conn: sqlite3.Connection) -> Layout:
    """Create the thread tables a file lacks (the log layout in a new file); returns its layout.

    Creating runs in a write transaction of its own, so two processes opening one new file at
    the same moment create one set of tables between them; a file that has its tables is only
    read.
    """
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if {"threadline_threads", "threadline_messages", "threadline_records"} <= tables:
        layout = _detect(conn)  # the common case: nothing to create, no write lock taken
        conn.executescript(RECORDS_SCHEMA)  # an index a file of an early version may lack
    else:
        with immediate_transaction(conn):
            layout = _detect(conn)
            schema = (LOG_SCHEMA if layout is LOG else KEYED_SCHEMA) + RECORDS_SCHEMA
            for statement in schema.split(";"):
                if statement.strip():
                    conn.execute(statement)
    if isinstance(conn, Connection):
        conn.facts[_FACT] = layout
    return layout
