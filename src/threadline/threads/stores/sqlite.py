"""``SQLiteChatMessageStore``: durable local threads in one SQLite file (stdlib ``sqlite3``, WAL).

Layout: one row per message, found by (thread, position), and one row per thread holding its version
(message count) and, for forks, its parent and the position it branched at. In a new file the
messages are appended to one table in the order written, whatever their thread (see
``_sqlite_layout``; files made earlier keep their layout). So:

* a turn writes only its new rows plus the thread row, in one transaction that also checks the
  version: per-turn cost does not grow with the history, and its bytes stay about 7 KB;
* a fork writes one thread row and shares the parent's rows up to the fork point;
* reads are incremental: a store caches the messages it has seen and fetches only newer rows;
* bounded reads (``max_tokens``) page backwards through the stored token counts and decode only
  the rows they return.

All blocking work runs on one worker thread per database file, which owns the connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from threadline._sqlite import SQLiteWorker, immediate_transaction
from threadline.exceptions import ThreadStateError
from threadline.threads.state import check_thread_id
from threadline.threads.stores._cache import HistoryCache
from threadline.threads.stores._sqlite_legacy import upgrade
from threadline.threads.stores._sqlite_rows import (
    Row,
    read_after,
    read_budget,
)
from threadline.threads.stores.base import TokenCounter, check_max_tokens, estimate_tokens
from threadline.threads.stores.codec import (
    JSONCodec,
    MessageCodec,
)
from threadline.threads.stores.database import ThreadInfo
from threadline.threads.stores.sqlite_tables import (
    append_rows,
    delete_thread,
    fork_thread,
)
from threadline.threads.thread import new_thread_id
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage, MessageView

__all__ = ["SQLiteChatMessageStore", "SQLiteThreadInfo", "acquire_worker", "release_worker"]

_T = TypeVar("_T")

PAGE_SIZE = 1024
"""The page size of new thread files. SQLite's WAL writes whole pages, and a turn touches a few
(the messages table's last leaf, a leaf of its index, the thread's row, and now and then a new
page with the pages that account for it: its parent, page 1, a pointer-map page). Smaller pages
make each of those cheaper: 1 KB pages write about a third less per turn than 2 KB, and half
what 4 KB do. A message of up to ~990 bytes of JSON fits in its leaf (the messages table is a
rowid table); longer ones continue in overflow pages, which they would need at 2 KB too beyond
twice that."""


class _Database:
    """One SQLite file's worker, shared by every store of that file in this process.

    Stores acquire it and release it on ``aclose()``; the last release closes the connection and
    stops the worker thread. A later store of the same file starts a new one.
    """

    _open: dict[str, SQLiteWorker] = {}
    _users: dict[str, int] = {}
    _open_lock = threading.Lock()

    @classmethod
    def _get_locked(cls, key: str) -> SQLiteWorker:
        db = cls._open.get(key)
        if db is None:
            db = cls._open[key] = SQLiteWorker(
                key,
                schema="",  # upgrade() creates the tables of the file's layout
                thread_name="threadline-sqlite",
                describe="SQLite database",
                migrate=upgrade,
                page_size=PAGE_SIZE,
            )
        return db

    @staticmethod
    def _key(path: str) -> str:
        return path if path == ":memory:" else str(Path(path).resolve())

    @classmethod
    def acquire(cls, path: str) -> SQLiteWorker:
        """The file's worker, counted as used until :meth:`release`."""
        key = cls._key(path)
        with cls._open_lock:
            db = cls._get_locked(key)
            cls._users[key] = cls._users.get(key, 0) + 1
            return db

    @classmethod
    async def release(cls, db: SQLiteWorker) -> None:
        """Stop counting one user of ``db``; the last one closes it."""
        with cls._open_lock:
            left = cls._users.get(db.path, 1) - 1
            if left > 0:
                cls._users[db.path] = left
                return
            cls._users.pop(db.path, None)
            if cls._open.get(db.path) is db:
                del cls._open[db.path]
        await db.close()


SQLiteThreadInfo = ThreadInfo
"""The summary row of a thread of a SQLite file (the name from before databases had one)."""


def acquire_worker(path: str) -> SQLiteWorker:
    """The worker of the SQLite file ``path``, shared with its stores; release it when done."""
    return _Database.acquire(path)


async def release_worker(worker: SQLiteWorker) -> None:
    """Stop using a worker from :func:`acquire_worker`; the last user closes it."""
    await _Database.release(worker)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_existing_database(path: str) -> None:
    """Raise unless ``path`` is an existing SQLite file holding threadline's thread tables."""
    hint = (
        "restoring a thread opens the database it was saved in and never creates or converts "
        "one; check the path (or restore through an agent whose chat_message_store_factory "
        "opens the right database)"
    )
    file = Path(path)
    try:
        with file.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ThreadStateError(
            f"sqlite store state names {path!r}, which cannot be opened "
            f"({exc.strerror or exc}); {hint}"
        ) from exc
    if header != _SQLITE_HEADER:
        raise ThreadStateError(f"sqlite store state names {path!r}, not a SQLite database; {hint}")
    try:
        # mode=rw: never create the file; reading the catalogue writes nothing.
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=rw", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ThreadStateError(
            f"sqlite store state names {path!r}, which cannot be read as a SQLite database "
            f"({exc}); {hint}"
        ) from exc
    if not {"threadline_threads", "threadline_messages"} <= tables:
        raise ThreadStateError(
            f"sqlite store state names {path!r}, a SQLite database without threadline's "
            f"threads; nothing was changed. {hint}"
        )


def _touch(conn: sqlite3.Connection) -> None:
    """Nothing: connecting creates the database and its tables."""


def _append(
    conn: sqlite3.Connection,
    thread_id: str,
    rows: list[tuple[str, int, bytes]],
    expected_version: int | None,
) -> int:
    with immediate_transaction(conn):
        return append_rows(conn, thread_id, rows, expected_version)


def _fork(conn: sqlite3.Connection, parent_id: str, child_id: str, at: int | None) -> None:
    with immediate_transaction(conn):
        fork_thread(conn, parent_id, child_id, at)


def _delete(conn: sqlite3.Connection, thread_id: str, codec: MessageCodec) -> None:
    with immediate_transaction(conn):
        delete_thread(conn, thread_id, codec)


class SQLiteChatMessageStore:
    """A local thread kept in a SQLite file; survives process restarts.

    Args:
        path: the database file (created with its folder if missing; restoring a saved state
            with :meth:`from_state` never creates one).
        thread_id: the thread to open or create; a new id when omitted.
        token_counter: counts each message's tokens when it is written, for bounded reads.
        codec: how records are encoded; e.g. ``EncryptedCodec(master_key)`` to encrypt them.

    Its serialized state is ``{"path": ..., "thread_id": ...}``: a reference, never the messages.
    """

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        thread_id: str | None = None,
        *,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.thread_id = (
            check_thread_id(thread_id, error=ValueError) if thread_id else new_thread_id()
        )
        self._db = _Database.acquire(self.path)
        self._owns_worker = True
        self._closed = False
        self._count = token_counter
        self._codec: MessageCodec = codec or JSONCodec()
        self._cache = HistoryCache()

    @classmethod
    def on_worker(
        cls,
        worker: SQLiteWorker,
        thread_id: str | None = None,
        *,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> SQLiteChatMessageStore:
        """A store on a worker someone else holds (a thread database's): closing it releases none.

        A server makes a store per request; holding the database's worker instead of a reference
        of their own, they need no closing, and the worker goes when the database does.
        """
        store = cls.__new__(cls)
        store.path = worker.path
        store.thread_id = (
            check_thread_id(thread_id, error=ValueError) if thread_id else new_thread_id()
        )
        store._db = worker
        store._owns_worker = False
        store._closed = False
        store._count = token_counter
        store._codec = codec or JSONCodec()
        store._cache = HistoryCache()
        return store

    def __repr__(self) -> str:
        return f"SQLiteChatMessageStore({self.path!r}, thread_id={self.thread_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Let go of the database; the last store of the file closes it and its worker thread.

        Stores never closed keep the worker until the process exits, as before.
        """
        if not self._closed:
            self._closed = True
            if self._owns_worker:
                await _Database.release(self._db)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SQLiteChatMessageStore:
        """Open the thread a serialized state names, in a threadline database that must exist.

        State travels (files, requests), so it may name any path: restoring never creates a file
        or folder, and never turns an existing file of another kind into a threadline database.
        Blocks briefly to check the file; async code restores through ``deserialize_thread``.

        Raises:
            ThreadStateError: the state lacks a path or thread id, or the path is not an existing
                threadline database; the message names the path.
        """
        path = state.get("path")
        if not isinstance(path, str) or not path:
            raise ThreadStateError(f"sqlite store state needs a 'path' string, got {path!r}")
        thread_id = cls._thread_id_from(state)
        if path != ":memory:":
            _check_existing_database(path)
        return cls(path, thread_id=thread_id)

    @staticmethod
    def _thread_id_from(state: Mapping[str, Any]) -> str:
        thread_id = state.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id:
            raise ThreadStateError(
                f"sqlite store state needs a 'thread_id' string, got {thread_id!r}"
            )
        return check_thread_id(thread_id, field="sqlite store state's thread_id")

    def _decode(self, rows: Sequence[Row]) -> list[ChatMessage]:
        decode = self._codec.decode
        return [decode(body, thread_id=t, record=seq) for t, seq, _, body in rows]

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """Messages oldest first; a full read fetches only rows newer than this store has seen."""
        check_max_tokens(max_tokens)
        if max_tokens is not None:
            return self._decode(await self._db.run(read_budget, self.thread_id, max_tokens))
        return (await self._read_all()).copy()

    async def view_messages(self) -> MessageView:
        """Every message, oldest first, without copying (see ``ChatMessageStore.view_messages``)."""
        messages = await self._read_all()
        return MessageView((messages, len(messages)))

    async def _read_all(self) -> list[ChatMessage]:
        """The cache's own list after reading what is new: never change it, copy or view it."""
        while True:  # at most twice: the second read is a full one
            start = self._cache.read_from()
            _, rows = await self._db.run(read_after, self.thread_id, start)
            merged = self._cache.merge(start, self._decode(rows))
            if merged is not None:
                return merged

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append in one transaction, checking ``expected_version`` inside it."""
        encode = self._codec.encode
        thread_id = self.thread_id
        rows = [(m.message_id, self._count(m), encode(m, thread_id=thread_id)) for m in messages]
        version = await self._db.run(_append, thread_id, rows, expected_version)
        self._cache.appended(messages, version)
        return version

    async def serialize(self) -> dict[str, JSONValue]:
        """A reference to the thread: the database path and the thread id.

        The database is created now if it was not yet: restoring opens existing databases only.
        """
        if not self._db.is_open:
            await self._db.run(_touch)
        return {"path": self.path, "thread_id": self.thread_id}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Point this store at the thread ``state`` names (in this store's database)."""
        self.thread_id = self._thread_id_from(state)
        self._cache.reset()

    async def fork(self, *, at: int | None = None) -> SQLiteChatMessageStore:
        """A new thread sharing this one's first ``at`` rows (all when None): one row written.

        Raises:
            ValueError: ``at`` is negative or past this thread's length.
        """
        child_id = new_thread_id()
        await self._db.run(_fork, self.thread_id, child_id, at)
        if not self._owns_worker:
            return self.on_worker(self._db, child_id, token_counter=self._count, codec=self._codec)
        return SQLiteChatMessageStore(
            self.path, thread_id=child_id, token_counter=self._count, codec=self._codec
        )

    async def delete(self) -> None:
        """Delete this thread. Forks of it keep their history: the shared part is copied to them.

        Rows copied to a fork are re-encoded for it when the codec binds records to their thread
        (encryption), so the fork can still read them with its own key.
        """
        await self._db.run(_delete, self.thread_id, self._codec)
        self._cache.reset()
