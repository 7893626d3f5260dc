"""One SQLite file served by one worker thread: the common base of threadline's SQLite parts.

The message store and the server's storage both keep a file in WAL mode and must never block the
event loop. ``sqlite3`` connections belong to the thread that uses them, so each file gets one
worker thread that owns its connection, and every query runs there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from threadline.exceptions import StoreError

__all__ = ["Connection", "SQLiteWorker", "immediate_transaction"]

_T = TypeVar("_T")


class Connection(sqlite3.Connection):
    """A ``sqlite3`` connection that remembers what was learnt about its file.

    E.g. the layout of its thread tables: looked up once per connection, not once per query.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.facts: dict[str, object] = {}


class SQLiteWorker:
    """A SQLite file (created with its folder), its connection, and the thread that owns both.

    Args:
        path: the file, or ``":memory:"``.
        schema: SQL run once per connection (``CREATE ... IF NOT EXISTS``).
        thread_name: names the worker thread, for debuggers and tests.
        describe: how errors name the database, e.g. ``"SQLite database"``.
        migrate: run after the schema, to bring files written by older versions up to date.
        page_size: the page size of a file created here (an existing file keeps its own).
    """

    def __init__(
        self,
        path: str,
        *,
        schema: str,
        thread_name: str,
        describe: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
        page_size: int | None = None,
    ) -> None:
        self.path = path
        self._page_size = page_size
        self._schema = schema
        self._describe = describe
        self._migrate = migrate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=Connection
        )
        conn.execute("PRAGMA busy_timeout = 10000")
        if self._page_size is not None:  # only takes effect on a new, empty file
            conn.execute(f"PRAGMA page_size = {int(self._page_size)}")
        # Only takes effect on a new, empty file: a prune can then give its pages back to the
        # file system (``PRAGMA incremental_vacuum``) instead of only to later writes.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        _enable_wal(conn)
        # NORMAL in WAL mode survives a process crash (SIGKILL); only a power loss can drop the
        # last commits. FULL would fsync every turn for that.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(self._schema)
        if self._migrate is not None:
            self._migrate(conn)
        return conn

    def _call(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        if self._conn is None:
            self._conn = self._connect()
        return fn(self._conn, *args)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the worker thread.

        Raises:
            StoreError: SQLite failed, or the file or its folder could not be made (``OSError``);
                the message names the database.
        """
        if self._closed:
            raise StoreError(
                f"{self._describe} {self.path!r} was closed; open a new store to use it again"
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn, args)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self._describe} {self.path!r} failed: {exc}") from exc

    @property
    def is_open(self) -> bool:
        """True once the connection was made and until :meth:`close`."""
        return self._conn is not None

    async def close(self) -> None:
        """Close the connection and stop the worker thread; later calls raise ``StoreError``."""

        def close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._closed:
            return
        if self._conn is not None:
            await self.run(close)
            self._conn = None
        self._closed = True
        # Joined, not abandoned: once close() returns, the worker thread is gone.
        await asyncio.to_thread(self._executor.shutdown, True)


_BUSY_SECONDS = 10.0


def _enable_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the file.

    Switching a new file to WAL needs an exclusive lock, and SQLite does not wait for it (the
    busy handler is not called): two processes opening the same new file at the same moment made
    one of them fail with "database is locked". Retry for as long as ``busy_timeout`` would wait.
    """
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Generator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error.

    IMMEDIATE takes the write lock at the start, so a read-check-write sequence (a version check
    before an append) cannot be overtaken by another process between its read and its write.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
