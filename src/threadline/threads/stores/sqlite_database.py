"""``SQLiteThreadDatabase``: one SQLite file's threads, records and batches.

It shares the file's worker (thread and connection) with every ``SQLiteChatMessageStore`` of the
file in this process, and its stores are ordinary ones, so what it writes any store reads.

Batches are **group-committed**: while one transaction is being written, new batches queue up and
go together in the next one, each in a savepoint of its own, so one batch's failed check (a moved
version) rolls back that batch only. Under load that turns many small commits and thread hops into
a few large ones (the server's throughput depends on it); alone, a batch is written at once.
Several processes may share the file: SQLite's locking serializes their transactions.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from threadline._sqlite import SQLiteWorker, immediate_transaction
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError
from threadline.threads.stores._sqlite_legacy import check_items, migrate_items, refuse_old_layout
from threadline.threads.stores._sqlite_prune import prune_threads, vacuum_free_pages
from threadline.threads.stores.base import TokenCounter, estimate_tokens
from threadline.threads.stores.codec import JSONCodec, MessageCodec
from threadline.threads.stores.database import ThreadInfo
from threadline.threads.stores.records import (
    AppendOp,
    BatchOp,
    DeleteRecordOp,
    DeleteThreadOp,
    ForkOp,
    PutOp,
    ReplaceOp,
    ThreadBatch,
    ThreadRecord,
    check_record_key,
    dump_body,
)
from threadline.threads.stores.retention import PruneResult, cutoff_of
from threadline.threads.stores.sqlite import SQLiteChatMessageStore, acquire_worker, release_worker
from threadline.threads.stores.sqlite_tables import append_rows, delete_thread, fork_thread
from threadline.types.messages import ChatMessage

__all__ = ["SQLiteThreadDatabase"]

_COLUMNS = "kind, owner, id, thread_id, parent, body, created_at"

Rows = list[tuple[str, int, bytes]]


def _record(row: Sequence[Any]) -> ThreadRecord:
    body = None if row[5] is None else json.loads(row[5])
    return ThreadRecord(
        kind=row[0],
        owner=row[1],
        id=row[2],
        thread_id=row[3],
        parent=row[4],
        body=body,
        created_at=row[6],
    )


def _put(conn: sqlite3.Connection, record: ThreadRecord) -> None:
    body = dump_body(record.body)
    conn.execute(
        f"INSERT OR REPLACE INTO threadline_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.kind,
            record.owner,
            record.id,
            record.thread_id,
            record.parent,
            body,
            record.created_at or time.time(),
        ),
    )


def _run_op(
    conn: sqlite3.Connection, op: BatchOp, rows: Rows | None, codec: MessageCodec
) -> tuple[str, int] | None:
    """One write of a batch, in the caller's transaction; (thread, version) for thread writes."""
    match op:
        case AppendOp(thread_id=tid, expected_version=expected):
            return tid, append_rows(conn, tid, rows or [], expected)
        case ForkOp(thread_id=parent, child_id=child, at=at):
            return child, fork_thread(conn, parent, child, at)
        case ReplaceOp(thread_id=tid, expected_version=expected):
            row = conn.execute(
                "SELECT version FROM threadline_threads WHERE thread_id = ?", (tid,)
            ).fetchone()
            actual = 0 if row is None else row[0]
            if actual != expected:
                raise ConcurrentThreadUpdateError(
                    tid, expected_version=expected, actual_version=actual
                )
            delete_thread(conn, tid, codec)
            return tid, append_rows(conn, tid, rows or [], 0)
        case DeleteThreadOp(thread_id=tid):
            delete_thread(conn, tid, codec)
            return tid, 0
        case PutOp(record=record):
            _put(conn, record)
        case DeleteRecordOp(kind=kind, id=record_id, owner=owner):
            conn.execute(
                "DELETE FROM threadline_records WHERE kind = ? AND owner = ? AND id = ?",
                (kind, owner, record_id),
            )
            conn.execute(
                "DELETE FROM threadline_records WHERE owner = ? AND parent = ?", (owner, record_id)
            )
    return None


@dataclass(slots=True)
class _Pending:
    ops: list[tuple[BatchOp, Rows | None]]
    future: asyncio.Future[dict[str, int]]


def _write_batches(
    conn: sqlite3.Connection, batches: list[_Pending], codec: MessageCodec
) -> list[dict[str, int] | Exception]:
    """Write batches in one transaction, each in a savepoint: a failure is its batch's own."""
    results: list[dict[str, int] | Exception] = []
    with immediate_transaction(conn):
        for batch in batches:
            conn.execute("SAVEPOINT one_batch")
            try:
                versions: dict[str, int] = {}
                for op, rows in batch.ops:
                    done = _run_op(conn, op, rows, codec)
                    if done is not None:
                        versions[done[0]] = done[1]
                results.append(versions)
            except (StoreError, ValueError, sqlite3.IntegrityError) as exc:
                # ConcurrentThreadUpdateError is a StoreError; ValueError: a fork point past the
                # thread, or text SQLite cannot encode. Either way, only this batch fails.
                conn.execute("ROLLBACK TO one_batch")
                results.append(
                    exc
                    if isinstance(exc, StoreError | ValueError)
                    else StoreError(f"batch failed: {exc}")
                )
            conn.execute("RELEASE one_batch")
    return results


class SQLiteThreadDatabase:
    """The threads and records of one SQLite file (``":memory:"`` for a private one in tests).

    Args:
        path: the file, created with its folder when missing.
        migrate: move the items of a server file of the earliest layout (``tl_items``) into
            threads when opening it; without it such a file is refused (``StoreError``).
        token_counter: counts each message's tokens when written (its stores use it too).
        codec: how message records are encoded (its stores use it too).

    Raises:
        StoreError: the file holds items in the earliest layout and ``migrate`` is not set.
    """

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        migrate: bool = False,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if not migrate:
            refuse_old_layout(self.path)
        self._migrate = migrate
        self._count = token_counter
        self._codec: MessageCodec = codec or JSONCodec()
        self._held: SQLiteWorker | None = None
        """The file's worker, taken on first use: a database used only for stores holds none."""
        self._closed = False
        self._pending: list[_Pending] = []
        self._flush_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SQLiteThreadDatabase({self.path!r})"

    def store(self, thread_id: str | None = None) -> SQLiteChatMessageStore:
        """The store of a thread of this file, on the database's worker (no closing needed)."""
        return SQLiteChatMessageStore.on_worker(
            self._db, thread_id, token_counter=self._count, codec=self._codec
        )

    @property
    def _db(self) -> SQLiteWorker:
        if self._held is None:
            if self._closed:
                raise StoreError(f"thread database {self.path!r} was closed; open a new one")
            self._held = acquire_worker(self.path)
        return self._held

    async def open(self) -> None:
        """Open the file now (creating it and its tables), and migrate or refuse an old layout."""
        await self._db.run(migrate_items if self._migrate else check_items)

    async def aclose(self) -> None:
        """Wait for queued batches, then let go of the file's worker."""
        if self._closed:
            return
        self._closed = True
        if self._flush_task is not None:
            await self._flush_task
        if self._held is not None:
            await release_worker(self._held)
            self._held = None

    async def list_threads(self) -> list[ThreadInfo]:
        """Every thread of the file, most recently updated first (a worker is held meanwhile)."""

        def query(conn: sqlite3.Connection) -> list[ThreadInfo]:
            rows = conn.execute(
                "SELECT thread_id, parent_id, version, created_at, updated_at "
                "FROM threadline_threads ORDER BY updated_at DESC"
            ).fetchall()
            return [ThreadInfo(*row) for row in rows]

        if self._held is not None:
            return await self._held.run(query)
        worker = acquire_worker(self.path)
        try:
            return await worker.run(query)
        finally:
            await release_worker(worker)

    async def delete_threads(
        self,
        *,
        older_than: timedelta | datetime,
        dry_run: bool = False,
        expire_records: Sequence[str] = (),
    ) -> PruneResult:
        """Delete the threads last updated before ``older_than``, with their records.

        One write transaction checks the ages and deletes, so a thread appended to meanwhile
        (here or in another process) is kept whole. An old thread that a kept fork still reads
        is kept (:attr:`PruneResult.kept_for_forks`). Afterwards a file threadline created gives
        the freed pages back to the file system; an older file reuses them for later writes.

        Args:
            older_than: an age (a positive ``timedelta``) or an aware, past ``datetime``.
            dry_run: change nothing; the result says what would be deleted.
            expire_records: record kinds (e.g. the server's ``"idempotency"``) deleted when
                created before the cutoff, whatever thread they belong to.

        Raises:
            UsageError: the age is zero or negative, or the datetime naive or in the future.
        """
        cutoff = cutoff_of(older_than)
        kinds = tuple(expire_records)
        result = await self._db.run(prune_threads, cutoff, dry_run, kinds)
        if not dry_run and result.threads:
            await self._db.run(vacuum_free_pages)
        return result

    def _encoded(self, op: BatchOp) -> Rows | None:
        if not isinstance(op, AppendOp | ReplaceOp):
            return None
        encode, count, tid = self._codec.encode, self._count, op.thread_id
        messages: Sequence[ChatMessage] = op.messages
        return [(m.message_id, count(m), encode(m, thread_id=tid)) for m in messages]

    async def commit(self, batch: ThreadBatch) -> dict[str, int]:
        """Write ``batch`` in one transaction (group-committed with concurrent batches)."""
        if self._closed:
            raise StoreError(f"thread database {self.path!r} was closed")
        loop = asyncio.get_running_loop()
        # Encoded here, before queueing: a message that cannot be stored fails its own batch.
        pending = _Pending([(op, self._encoded(op)) for op in batch.ops], loop.create_future())
        self._pending.append(pending)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = loop.create_task(self._flush())
        return await asyncio.shield(pending.future)

    async def _flush(self) -> None:
        while self._pending:
            batches, self._pending = self._pending, []
            try:
                results = await self._db.run(_write_batches, batches, self._codec)
            except BaseException as exc:  # the whole transaction failed
                for batch in batches:
                    if not batch.future.done():
                        batch.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for batch, result in zip(batches, results, strict=True):
                if batch.future.done():
                    continue
                if isinstance(result, Exception):
                    batch.future.set_exception(result)
                else:
                    batch.future.set_result(result)

    async def get_record(
        self, kind: str, record_id: str, *, owner: str = ""
    ) -> ThreadRecord | None:
        """The record, or None."""

        def query(conn: sqlite3.Connection) -> ThreadRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM threadline_records "
                "WHERE kind = ? AND owner = ? AND id = ?",
                (kind, owner, record_id),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._db.run(query)

    async def list_records(
        self, kind: str, *, owner: str = "", parent: str | None = None, limit: int = 100
    ) -> list[ThreadRecord]:
        """Records of one kind and owner (and parent), newest first."""

        def query(conn: sqlite3.Connection) -> list[ThreadRecord]:
            sql = f"SELECT {_COLUMNS} FROM threadline_records WHERE owner = ? AND kind = ?"
            args: list[Any] = [owner, kind]
            if parent is not None:
                sql += " AND parent = ?"
                args.append(parent)
            sql += " ORDER BY created_at DESC LIMIT ?"
            args.append(limit)
            return [_record(r) for r in conn.execute(sql, args).fetchall()]

        return await self._db.run(query)

    async def claim_record(
        self, kind: str, record_id: str, *, owner: str = "", stale_after: float
    ) -> ThreadRecord | None:
        """Claim a record id: None when claimed now, else the record that holds it."""
        check_record_key(kind, record_id)

        def work(conn: sqlite3.Connection) -> ThreadRecord | None:
            with immediate_transaction(conn):
                now = time.time()
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM threadline_records "
                    "WHERE kind = ? AND owner = ? AND id = ?",
                    (kind, owner, record_id),
                ).fetchone()
                if row is None or (row[5] is None and now - row[6] > stale_after):
                    _put(conn, ThreadRecord(kind=kind, id=record_id, owner=owner, created_at=now))
                    return None
                return _record(row)

        return await self._db.run(work)

    async def release_claim(self, kind: str, record_id: str, *, owner: str = "") -> None:
        """Drop an unanswered claim."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM threadline_records "
                "WHERE kind = ? AND owner = ? AND id = ? AND body IS NULL",
                (kind, owner, record_id),
            )

        await self._db.run(work)
