"""``SQLiteServerStorage``: the server's default storage, one SQLite file (WAL).

Conversations, Responses chains and Assistants threads are threads of the file's message-store
tables (``threadline_threads``/``threadline_messages``, the layout of ``SQLiteChatMessageStore``;
thread id = container id), so ``threadline threads list/show/fork`` and any
``SQLiteChatMessageStore`` of the file read them. A ``previous_response_id`` branch is a fork at
the older response's position: it shares the prefix, nothing is copied. Objects (responses,
conversations, assistants, runs) and idempotency records live in ``tl_objects`` and
``tl_idempotency``. A turn's messages and its objects are written in **one** transaction (the
thread SQL runs on this storage's connection), so a crash keeps a turn whole or not at all.

All work runs on one worker thread that owns the connection, so the event loop never blocks on
disk. Several server processes may share the file: SQLite's locking serializes their writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from threadline._sqlite import SQLiteWorker, immediate_transaction
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError
from threadline.hosting.storage.base import IdempotencyRecord, ItemsChangedError, StoredObject
from threadline.hosting.storage.sqlite_layout import (
    check_layout,
    item_rows,
    migrate_layout,
    refuse_old_layout,
    thread_version,
)
from threadline.threads.stores.codec import JSONCodec
from threadline.threads.stores.sqlite_tables import (
    THREAD_SCHEMA,
    append_rows,
    delete_thread,
    fork_thread,
    read_after,
)

__all__ = ["SQLiteServerStorage"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tl_objects (
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    parent     TEXT,
    container  TEXT,
    upto       INTEGER,
    body       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS tl_objects_list ON tl_objects (owner, kind, parent, created_at);
CREATE TABLE IF NOT EXISTS tl_idempotency (
    owner      TEXT NOT NULL,
    key        TEXT NOT NULL,
    status     INTEGER,
    body       TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (owner, key)
);
"""

_CODEC = JSONCodec()

_STALE_CLAIM_SECONDS = 300.0
"""A claim older than this belongs to a request whose server died; a retry may take it over."""


def _row(row: tuple[Any, ...]) -> StoredObject:
    return StoredObject(
        id=row[0],
        kind=row[1],
        owner=row[2],
        parent=row[3],
        container=row[4],
        upto=row[5],
        body=json.loads(row[6]),
        created_at=row[7],
    )


_COLUMNS = "id, kind, owner, parent, container, upto, body, created_at"


def _put(conn: sqlite3.Connection, obj: StoredObject) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO tl_objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            obj.id,
            obj.kind,
            obj.owner,
            obj.parent,
            obj.container,
            obj.upto,
            json.dumps(obj.body, ensure_ascii=False),
            obj.created_at or time.time(),
        ),
    )


def _finish(conn: sqlite3.Connection, owner: str, key: str, record: IdempotencyRecord) -> None:
    conn.execute(
        "UPDATE tl_idempotency SET status = ?, body = ? WHERE owner = ? AND key = ?",
        (record.status, json.dumps(record.body, ensure_ascii=False), owner, key),
    )


@dataclass(slots=True, kw_only=True)
class _Append:
    container: str
    rows: list[tuple[str, int, str]]
    expected_len: int | None
    objects: tuple[StoredObject, ...]
    copy_from: tuple[str, int] | None
    idempotency: tuple[str, str, IdempotencyRecord] | None
    future: asyncio.Future[int]


def _append_one(conn: sqlite3.Connection, op: _Append) -> int:
    if op.copy_from is not None:  # a branch: a fork sharing the source's prefix
        source, at = op.copy_from
        try:
            fork_thread(conn, source, op.container, at)
        except ConcurrentThreadUpdateError:
            raise ItemsChangedError(f"branch {op.container!r} exists already") from None
        except ValueError:  # the source lost items while the turn ran (its conversation went)
            raise ItemsChangedError(f"container {source!r} no longer holds {at} items") from None
    try:
        version = append_rows(conn, op.container, op.rows, op.expected_len)
    except ConcurrentThreadUpdateError as exc:
        raise ItemsChangedError(
            f"container {op.container!r} has {exc.actual_version} items, expected {op.expected_len}"
        ) from None
    for obj in op.objects:
        _put(conn, obj)
    if op.idempotency is not None:
        _finish(conn, *op.idempotency)
    return version


def _append_batch(conn: sqlite3.Connection, batch: list[_Append]) -> list[int | Exception]:
    """Write a batch of appends in one transaction, each in a savepoint of its own."""
    results: list[int | Exception] = []
    with immediate_transaction(conn):
        for op in batch:
            conn.execute("SAVEPOINT one_append")
            try:
                results.append(_append_one(conn, op))
            except (ItemsChangedError, StoreError, sqlite3.IntegrityError, ValueError) as exc:
                # Whatever fails in one append (a changed length, a clash, text SQLite cannot
                # encode) is that append's own failure: the others in the batch still commit.
                conn.execute("ROLLBACK TO one_append")
                results.append(
                    exc
                    if isinstance(exc, ItemsChangedError | StoreError)
                    else StoreError(f"append to {op.container!r} failed: {exc}")
                )
            conn.execute("RELEASE one_append")
    return results


class SQLiteServerStorage:
    """Server storage in a SQLite file; ``":memory:"`` keeps it in memory for tests.

    Args:
        path: the database file, created with its folder when missing.
        migrate: move the items of a database made by the previous layout (``tl_items``) into
            threads when opening it; without it such a database is refused (``StoreError``).
    """

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = False) -> None:
        self.path = os.fspath(path)
        if not migrate:
            refuse_old_layout(self.path)
        self._db = SQLiteWorker(
            self.path,
            schema=_SCHEMA + THREAD_SCHEMA,
            thread_name="threadline-server-db",
            describe="server database",
            migrate=check_layout if not migrate else migrate_layout,
        )
        self._pending: list[_Append] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self._db.run(fn, *args)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, work: Callable[[], _T]) -> _T:
        with immediate_transaction(conn):
            return work()

    async def get(self, owner: str, kind: str, object_id: str) -> StoredObject | None:
        """The object, or ``None`` when missing or owned by someone else."""

        def query(conn: sqlite3.Connection) -> StoredObject | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM tl_objects WHERE kind = ? AND id = ? AND owner = ?",
                (kind, object_id, owner),
            ).fetchone()
            return None if row is None else _row(row)

        return await self._run(query)

    async def put(self, obj: StoredObject) -> None:
        """Insert or replace an object."""
        await self._run(_put, obj)

    async def delete(self, owner: str, kind: str, object_id: str) -> bool:
        """Delete an object with its children and its container's items."""

        def work(conn: sqlite3.Connection) -> bool:
            def inner() -> bool:
                row = conn.execute(
                    "SELECT container FROM tl_objects WHERE kind = ? AND id = ? AND owner = ?",
                    (kind, object_id, owner),
                ).fetchone()
                if row is None:
                    return False
                conn.execute("DELETE FROM tl_objects WHERE kind = ? AND id = ?", (kind, object_id))
                conn.execute(
                    "DELETE FROM tl_objects WHERE parent = ? AND owner = ?", (object_id, owner)
                )
                # A conversation or thread owns its container; a response shares its chain's.
                if row[0] is not None and kind != "response":
                    delete_thread(conn, row[0], _CODEC)
                return True

            return self._transaction(conn, inner)

        return await self._run(work)

    async def list_objects(
        self, owner: str, kind: str, *, parent: str | None = None, limit: int = 20
    ) -> list[StoredObject]:
        """Objects of one kind (and parent), newest first."""

        def query(conn: sqlite3.Connection) -> list[StoredObject]:
            sql = f"SELECT {_COLUMNS} FROM tl_objects WHERE owner = ? AND kind = ?"
            args: list[Any] = [owner, kind]
            if parent is not None:
                sql += " AND parent = ?"
                args.append(parent)
            sql += " ORDER BY created_at DESC LIMIT ?"
            args.append(limit)
            return [_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self._run(query)

    async def items(self, container: str, *, upto: int | None = None) -> list[dict[str, Any]]:
        """A container's items, oldest first (following a branch into the prefix it shares)."""

        def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            _, rows = read_after(conn, container, 0)
            if upto is not None:
                rows = rows[:upto]
            return [json.loads(body) for _, _, _, body in rows]

        return await self._run(query)

    async def append(
        self,
        container: str,
        items: Sequence[dict[str, Any]],
        *,
        expected_len: int | None = None,
        objects: Sequence[StoredObject] = (),
        copy_from: tuple[str, int] | None = None,
        idempotency: tuple[str, str, IdempotencyRecord] | None = None,
    ) -> int:
        """Append items and save objects atomically, optionally branching from another container.

        Appends are group-committed: while one batch is being written, new appends queue up and
        go together in the next transaction (each in its own savepoint, so one failing check
        affects only its own append). Under load that turns many small commits and thread hops
        into a few large ones; alone, an append is written at once.
        """
        op = _Append(
            container=container,
            rows=item_rows(items),
            expected_len=expected_len,
            objects=tuple(objects),
            copy_from=copy_from,
            idempotency=idempotency,
            future=asyncio.get_running_loop().create_future(),
        )
        self._pending.append(op)
        if not self._flushing:
            self._flushing = True
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(op.future)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._run(_append_batch, batch)
                except BaseException as exc:  # the whole transaction failed
                    for op in batch:
                        if not op.future.done():
                            op.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for op, result in zip(batch, results, strict=True):
                    if op.future.done():
                        continue
                    if isinstance(result, BaseException):
                        op.future.set_exception(result)
                    else:
                        op.future.set_result(result)
        finally:
            self._flushing = False

    async def replace_items(
        self, container: str, items: Sequence[dict[str, Any]], *, expected_len: int
    ) -> None:
        """Rewrite a container's items atomically, if it still holds ``expected_len`` items."""
        rows = item_rows(items)

        def work(conn: sqlite3.Connection) -> None:
            def inner() -> None:
                length = thread_version(conn, container)
                if length != expected_len:
                    raise ItemsChangedError(
                        f"container {container!r} has {length} items, expected {expected_len}"
                    )
                delete_thread(conn, container, _CODEC)
                append_rows(conn, container, rows, 0)

            self._transaction(conn, inner)

        await self._run(work)

    async def idempotency_begin(self, owner: str, key: str) -> IdempotencyRecord | None | bool:
        """Claim a key, or report its stored outcome, or ``None`` while another request runs it."""

        def work(conn: sqlite3.Connection) -> IdempotencyRecord | None | bool:
            def inner() -> IdempotencyRecord | None | bool:
                now = time.time()
                row = conn.execute(
                    "SELECT status, body, created_at FROM tl_idempotency "
                    "WHERE owner = ? AND key = ?",
                    (owner, key),
                ).fetchone()
                if row is None or (row[0] is None and now - row[2] > _STALE_CLAIM_SECONDS):
                    conn.execute(
                        "INSERT OR REPLACE INTO tl_idempotency (owner, key, created_at) "
                        "VALUES (?, ?, ?)",
                        (owner, key, now),
                    )
                    return True
                if row[0] is None:
                    return None
                return IdempotencyRecord(status=row[0], body=json.loads(row[1]))

            return self._transaction(conn, inner)

        return await self._run(work)

    async def idempotency_finish(self, owner: str, key: str, record: IdempotencyRecord) -> None:
        """Store the outcome of a claimed key."""
        await self._run(_finish, owner, key, record)

    async def idempotency_release(self, owner: str, key: str) -> None:
        """Forget a claim whose request failed."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM tl_idempotency WHERE owner = ? AND key = ? AND status IS NULL",
                (owner, key),
            )

        await self._run(work)

    async def open(self) -> None:
        """Nothing to do: the file is opened and checked when the storage is made."""

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._flush_task is not None:
            await self._flush_task
        await self._db.close()
