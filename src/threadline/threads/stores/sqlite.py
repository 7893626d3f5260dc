"""``SQLiteChatMessageStore``: durable local threads in one SQLite file (stdlib ``sqlite3``, WAL).

Layout: one row per message, keyed by (thread, position), and one row per thread holding its version
(message count) and, for forks, its parent and the position it branched at. So:

* a turn writes only its new rows plus the thread row, in one transaction that also checks the
  version: per-turn cost does not grow with the history;
* a fork writes one thread row and shares the parent's rows up to the fork point;
* reads are incremental: a store caches the messages it has seen and fetches only newer rows.

All blocking work runs on one worker thread per database file, which owns the connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from threadline.exceptions import (
    ConcurrentThreadUpdateError,
    MessageFormatError,
    StoreError,
    ThreadStateError,
)
from threadline.threads.thread import new_thread_id
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage

__all__ = ["SQLiteChatMessageStore", "SQLiteThreadInfo"]

_T = TypeVar("_T")

_SCHEMA = """
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
    body       TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
"""


class _Database:
    """One SQLite file: a connection owned by a single worker thread, shared by its stores."""

    _open: dict[str, _Database] = {}
    _open_lock = threading.Lock()

    @classmethod
    def get(cls, path: str) -> _Database:
        key = path if path == ":memory:" else str(Path(path).resolve())
        with cls._open_lock:
            db = cls._open.get(key)
            if db is None:
                db = cls._open[key] = cls(key)
            return db

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadline-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only a power loss can drop the
        # last commits. FULL would fsync every turn for that.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def _call(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        if self._conn is None:
            self._conn = self._connect()
        return fn(self._conn, *args)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the worker thread."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn, args)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite database {self.path!r} failed: {exc}") from exc


class SQLiteThreadInfo:
    """A thread's summary row, as listed by :meth:`SQLiteChatMessageStore.list_threads`."""

    __slots__ = ("created_at", "parent_id", "thread_id", "updated_at", "version")

    def __init__(self, thread_id: str, parent_id: str | None, version: int,
                 created_at: float, updated_at: float) -> None:
        self.thread_id = thread_id
        self.parent_id = parent_id
        self.version = version
        self.created_at = created_at
        self.updated_at = updated_at

    def __repr__(self) -> str:
        return f"SQLiteThreadInfo({self.thread_id!r}, messages={self.version})"


def _thread_row(conn: sqlite3.Connection, thread_id: str) -> tuple[str | None, int, int] | None:
    row = conn.execute(
        "SELECT parent_id, fork_version, version FROM threadline_threads WHERE thread_id = ?",
        (thread_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _decode(thread_id: str, seq: int, body: str) -> ChatMessage:
    try:
        return ChatMessage.from_dict(json.loads(body))
    except (json.JSONDecodeError, MessageFormatError) as exc:
        raise StoreError(
            f"thread {thread_id!r}: stored message #{seq} is corrupt and cannot be read: {exc}"
        ) from exc


def _read_rows(conn: sqlite3.Connection, thread_id: str, after: int, upto: int | None) -> list[tuple[int, str]]:
    if upto is None:
        return conn.execute(
            "SELECT seq, body FROM threadline_messages WHERE thread_id = ? AND seq > ? ORDER BY seq",
            (thread_id, after),
        ).fetchall()
    return conn.execute(
        "SELECT seq, body FROM threadline_messages WHERE thread_id = ? AND seq > ? AND seq <= ? "
        "ORDER BY seq",
        (thread_id, after, upto),
    ).fetchall()


def _read_chain(conn: sqlite3.Connection, thread_id: str, after: int) -> list[tuple[str, int, str]]:
    """Rows of a thread after position ``after``, following fork parents for shared prefixes."""
    segments: list[list[tuple[str, int, str]]] = []
    current: str | None = thread_id
    upto: int | None = None
    while current is not None:
        info = _thread_row(conn, current)
        parent, fork_version = (None, 0) if info is None else (info[0], info[1])
        start = max(after, fork_version)
        if upto is None or upto > start:
            segments.append([(current, s, b) for s, b in _read_rows(conn, current, start, upto)])
        if parent is None or after >= fork_version:
            break
        current, upto = parent, fork_version if upto is None else min(upto, fork_version)
    return [row for segment in reversed(segments) for row in segment]


class SQLiteChatMessageStore:
    """A local thread kept in a SQLite file; survives process restarts.

    Args:
        path: the database file (created with its folder if missing).
        thread_id: the thread to open or create; a new id when omitted.

    Its serialized state is ``{"path": ..., "thread_id": ...}``: a reference, never the messages.
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], thread_id: str | None = None) -> None:
        self.path = os.fspath(path)
        self.thread_id = thread_id or new_thread_id()
        self._db = _Database.get(self.path)
        self._cache: list[ChatMessage] = []
        self._loaded = False

    def __repr__(self) -> str:
        return f"SQLiteChatMessageStore({self.path!r}, thread_id={self.thread_id!r})"

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SQLiteChatMessageStore:
        """Open the thread a serialized state names.

        Raises:
            ThreadStateError: the state lacks a path or thread id.
        """
        path = state.get("path")
        if not isinstance(path, str) or not path:
            raise ThreadStateError(f"sqlite store state needs a 'path' string, got {path!r}")
        return cls(path, thread_id=cls._thread_id_from(state))

    @staticmethod
    def _thread_id_from(state: Mapping[str, Any]) -> str:
        thread_id = state.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id:
            raise ThreadStateError(
                f"sqlite store state needs a 'thread_id' string, got {thread_id!r}"
            )
        return thread_id

    async def list_messages(self) -> list[ChatMessage]:
        """All messages, oldest first; reads only rows newer than what this store has seen."""
        thread_id = self.thread_id
        after = len(self._cache) if self._loaded else 0
        rows = await self._db.run(_read_chain, thread_id, after)
        if not self._loaded:
            self._cache = []
            self._loaded = True
        if rows:
            self._cache.extend(_decode(t, seq, body) for t, seq, body in rows)
        return self._cache.copy()

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append in one transaction, checking ``expected_version`` inside it."""
        bodies = [(m.message_id, json.dumps(m.to_dict(), ensure_ascii=False)) for m in messages]
        version = await self._db.run(self._append, self.thread_id, bodies, expected_version)
        if self._loaded and len(self._cache) == version - len(messages):
            self._cache.extend(messages)
        else:
            self._loaded = False  # someone else wrote too: re-read on the next list
        return version

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        thread_id: str,
        bodies: list[tuple[str, str]],
        expected_version: int | None,
    ) -> int:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            info = _thread_row(conn, thread_id)
            if info is None:
                conn.execute(
                    "INSERT INTO threadline_threads (thread_id, created_at, updated_at) "
                    "VALUES (?, ?, ?)",
                    (thread_id, now, now),
                )
                version = 0
            else:
                version = info[2]
            if expected_version is not None and expected_version != version:
                raise ConcurrentThreadUpdateError(
                    thread_id, expected_version=expected_version, actual_version=version
                )
            conn.executemany(
                "INSERT INTO threadline_messages (thread_id, seq, message_id, body) "
                "VALUES (?, ?, ?, ?)",
                [(thread_id, version + i + 1, mid, body) for i, (mid, body) in enumerate(bodies)],
            )
            version += len(bodies)
            conn.execute(
                "UPDATE threadline_threads SET version = ?, updated_at = ? WHERE thread_id = ?",
                (version, now, thread_id),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return version

    async def serialize(self) -> dict[str, JSONValue]:
        """A reference to the thread: the database path and the thread id."""
        return {"path": self.path, "thread_id": self.thread_id}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Point this store at the thread ``state`` names (in this store's database)."""
        self.thread_id = self._thread_id_from(state)
        self._cache = []
        self._loaded = False

    async def fork(self) -> SQLiteChatMessageStore:
        """A new thread sharing this one's rows up to now: one row written, no messages copied."""
        child_id = new_thread_id()
        await self._db.run(self._fork, self.thread_id, child_id)
        return SQLiteChatMessageStore(self.path, thread_id=child_id)

    @staticmethod
    def _fork(conn: sqlite3.Connection, parent_id: str, child_id: str) -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            info = _thread_row(conn, parent_id)
            version = 0 if info is None else info[2]
            if info is None:
                conn.execute(
                    "INSERT INTO threadline_threads (thread_id, created_at, updated_at) "
                    "VALUES (?, ?, ?)",
                    (parent_id, now, now),
                )
            conn.execute(
                "INSERT INTO threadline_threads "
                "(thread_id, parent_id, fork_version, version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (child_id, parent_id, version, version, now, now),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def delete(self) -> None:
        """Delete this thread. Forks of it keep their history: the shared part is copied to them."""
        await self._db.run(self._delete, self.thread_id)
        self._cache = []
        self._loaded = False

    @staticmethod
    def _delete(conn: sqlite3.Connection, thread_id: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            children = conn.execute(
                "SELECT thread_id, fork_version FROM threadline_threads WHERE parent_id = ?",
                (thread_id,),
            ).fetchall()
            for child_id, fork_version in children:
                prefix = _read_chain(conn, thread_id, 0)[:fork_version]
                conn.executemany(
                    "INSERT INTO threadline_messages (thread_id, seq, message_id, body) "
                    "VALUES (?, ?, ?, ?)",
                    [(child_id, seq, json.loads(body)["message_id"], body) for _, seq, body in prefix],
                )
                conn.execute(
                    "UPDATE threadline_threads SET parent_id = NULL, fork_version = 0 "
                    "WHERE thread_id = ?",
                    (child_id,),
                )
            conn.execute("DELETE FROM threadline_messages WHERE thread_id = ?", (thread_id,))
            conn.execute("DELETE FROM threadline_threads WHERE thread_id = ?", (thread_id,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @classmethod
    async def list_threads(cls, path: str | os.PathLike[str]) -> list[SQLiteThreadInfo]:
        """The threads stored in a database file, most recently updated first."""

        def query(conn: sqlite3.Connection) -> list[SQLiteThreadInfo]:
            rows = conn.execute(
                "SELECT thread_id, parent_id, version, created_at, updated_at "
                "FROM threadline_threads ORDER BY updated_at DESC"
            ).fetchall()
            return [SQLiteThreadInfo(*row) for row in rows]

        return await _Database.get(os.fspath(path)).run(query)
