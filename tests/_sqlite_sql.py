"""SQL that tests use to reach into SQLite thread files: to damage them, to look at them at rest,
and to make a file as threadline made it before the log layout (issue 16)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

OF_THREAD = "thread = (SELECT num FROM threadline_threads WHERE thread_id = ?)"
"""Selects a thread's rows of ``threadline_messages`` in a file threadline creates (the log
layout: messages name their thread by its row's ``num``), given the thread id."""

KEYED_OF_THREAD = "thread_id = ?"
"""The same in a file of the keyed layout (made before issue 16)."""

_KEYED_FILE = """
CREATE TABLE threadline_threads (
    thread_id    TEXT PRIMARY KEY,
    parent_id    TEXT,
    fork_version INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE TABLE threadline_messages (
    thread_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    tokens     INTEGER NOT NULL DEFAULT 0,
    body       BLOB NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
CREATE TABLE threadline_records (
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    id         TEXT NOT NULL,
    thread_id  TEXT,
    parent     TEXT,
    body       TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, owner, id)
);
CREATE INDEX threadline_records_list ON threadline_records (owner, kind, parent, created_at);
"""
"""The tables exactly as threadline created them before the log layout (copied, not imported:
the point is that files made then keep working whatever the code's schema becomes)."""


def make_keyed_file(path: Path) -> None:
    """An empty thread file as threadline made it before issue 16: keyed layout, 2 KB pages."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA page_size = 2048")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(_KEYED_FILE)
