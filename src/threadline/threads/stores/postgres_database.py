"""``PostgresThreadDatabase``: one schema's threads, records and batches, shared by many processes.

Its stores are ordinary ``PostgresChatMessageStore`` s on the database's pool, and a batch runs
their own SQL (append, fork, delete) inside one transaction with the records' writes: there is
one SQL for the thread tables. Appends check the version in the row they update, so two
processes never interleave a turn; the schema is created under an advisory lock, so any number of
processes may start on a new schema at the same moment.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from threadline._postgres import store_pool
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError
from threadline.threads.stores._postgres_legacy import upgrade
from threadline.threads.stores._postgres_prune import prune_schema
from threadline.threads.stores.base import TokenCounter, estimate_tokens
from threadline.threads.stores.codec import JSONCodec, MessageCodec
from threadline.threads.stores.database import ThreadInfo
from threadline.threads.stores.postgres import PostgresChatMessageStore
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

__all__ = ["PostgresThreadDatabase"]

_COLUMNS: LiteralString = "kind, owner, id, thread_id, parent, body, created_at"


def _record(row: Sequence[Any]) -> ThreadRecord:
    return ThreadRecord(
        kind=row[0],
        owner=row[1],
        id=row[2],
        thread_id=row[3],
        parent=row[4],
        body=None if row[5] is None else json.loads(row[5]),
        created_at=float(row[6]),
    )


class PostgresThreadDatabase:
    """The threads and records of one PostgreSQL schema (psycopg 3, one pool).

    Args:
        url: a libpq connection URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``.
        schema: the schema holding the tables (created when missing).
        migrate: move the items of a schema of the earliest server layout (``tl_items``) into
            threads on open; without it such a schema is refused (``StoreError``).
        max_connections: the largest number of pooled connections.
        token_counter: counts each message's tokens when written (its stores use it too).
        codec: how message records are encoded (its stores use it too).
    """

    kind = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "threadline",
        migrate: bool = False,
        max_connections: int = 10,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
            raise ValueError(f"schema must be a plain SQL identifier, got {schema!r}")
        made = store_pool(
            url,
            None,
            store="PostgresThreadDatabase",
            connect_timeout=10.0,
            max_size=max_connections,
        )
        self._pool = made.pool
        self._where = made.where
        self.schema = schema
        self._migrate = migrate
        self._count = token_counter
        self._codec: MessageCodec = codec or JSONCodec()
        self._records = sql.Identifier(schema, "threadline_records")
        self._threads = sql.Identifier(schema, "threadline_threads")
        self._opened = False
        self._closed = False
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresThreadDatabase({self._where!r}, schema={self.schema!r})"

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"PostgreSQL at {self._where} (schema {self.schema!r}) failed: {exc}")

    def store(self, thread_id: str | None = None) -> PostgresChatMessageStore:
        """The store of a thread of this schema, on the database's pool (open it first)."""
        return PostgresChatMessageStore(
            pool=self._pool,
            thread_id=thread_id,
            schema=self.schema,
            token_counter=self._count,
            codec=self._codec,
        )

    async def open(self) -> None:
        """Connect, create the schema when missing, bring an old layout up to date (or refuse it).

        Raises:
            StoreError: the server cannot be reached, or the schema holds an old layout that
                needs ``migrate``; nothing was changed then.
        """
        async with self._opening:
            if self._opened:
                return
            if self._closed:
                raise StoreError(f"{self!r} was closed; open a new database to use it again")
            try:
                await self._pool.open(wait=True, timeout=self._pool.timeout)
                await self.store().setup()
                async with self._pool.connection() as conn, conn.transaction():
                    key = f"threadline:{self.schema}"  # the set-up lock of the schema's stores
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
                    await upgrade(conn, self.schema, migrate=self._migrate)
            except (psycopg.Error, StoreError, OSError) as exc:
                await self._pool.close()
                if isinstance(exc, StoreError):
                    raise
                raise self._error(exc) from exc
            self._opened = True

    async def aclose(self) -> None:
        """Close the pool; the database cannot be used afterwards."""
        self._closed = True
        self._opened = False
        await self._pool.close()

    async def _fetch(self, query: sql.Composable, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self._opened:
            await self.open()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(query, args)
                return await cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def list_threads(self) -> list[ThreadInfo]:
        """Every thread of the schema, most recently updated first."""
        rows = await self._fetch(
            sql.SQL(
                "SELECT thread_id, parent_id, version, extract(epoch FROM created_at)::float8, "
                "extract(epoch FROM updated_at)::float8 FROM {} ORDER BY updated_at DESC"
            ).format(self._threads),
            (),
        )
        return [ThreadInfo(r[0], r[1], int(r[2]), float(r[3]), float(r[4])) for r in rows]

    async def delete_threads(
        self,
        *,
        older_than: timedelta | datetime,
        dry_run: bool = False,
        expire_records: Sequence[str] = (),
    ) -> PruneResult:
        """Delete the threads last updated before ``older_than``, with their records.

        One transaction checks, locks and deletes, so a thread appended to meanwhile (by any
        process) is kept whole; prunes of one schema from several processes take turns. An old
        thread that a kept fork still reads is kept (:attr:`PruneResult.kept_for_forks`).
        PostgreSQL's autovacuum makes the freed space reusable.

        Args:
            older_than: an age (a positive ``timedelta``) or an aware, past ``datetime``.
            dry_run: change nothing (the transaction is rolled back); the result says what
                would be deleted.
            expire_records: record kinds (e.g. the server's ``"idempotency"``) deleted when
                created before the cutoff, whatever thread they belong to.

        Raises:
            UsageError: the age is zero or negative, or the datetime naive or in the future.
        """
        cutoff = cutoff_of(older_than)
        if not self._opened:
            await self.open()
        try:
            async with self._pool.connection() as conn:
                async with conn.transaction() as tx:
                    result = await prune_schema(
                        conn,
                        self.schema,
                        cutoff,
                        dry_run=dry_run,
                        expire_kinds=tuple(expire_records),
                    )
                    if dry_run:
                        raise psycopg.Rollback(tx)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        return result

    async def commit(self, batch: ThreadBatch) -> dict[str, int]:
        """Run the batch in one transaction; a failing write rolls all of it back."""
        if not self._opened:
            await self.open()
        versions: dict[str, int] = {}
        try:
            async with self._pool.connection() as conn, conn.transaction():
                for op in batch.ops:
                    done = await self._run(conn, op)
                    if done is not None:
                        versions[done[0]] = done[1]
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        return versions

    async def _run(self, conn: psycopg.AsyncConnection[Any], op: BatchOp) -> tuple[str, int] | None:
        match op:
            case AppendOp(thread_id=tid, messages=messages, expected_version=expected):
                return tid, await self.store(tid)._append_on(conn, messages, expected)
            case ForkOp(thread_id=parent, child_id=child, at=at):
                return child, await self.store(parent)._fork_on(conn, child, at)
            case ReplaceOp(thread_id=tid, messages=messages, expected_version=expected):
                cur = await conn.execute(
                    sql.SQL("SELECT version FROM {} WHERE thread_id = %s FOR UPDATE").format(
                        self._threads
                    ),
                    (tid,),
                )
                row = await cur.fetchone()
                actual = 0 if row is None else int(row[0])
                if actual != expected:
                    raise ConcurrentThreadUpdateError(
                        tid, expected_version=expected, actual_version=actual
                    )
                store = self.store(tid)
                await store._delete_on(conn)
                return tid, await store._append_on(conn, messages, 0)
            case DeleteThreadOp(thread_id=tid):
                await self.store(tid)._delete_on(conn)
                return tid, 0
            case PutOp(record=record):
                await conn.execute(*self._put(record))
            case DeleteRecordOp(kind=kind, id=record_id, owner=owner):
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE kind = %s AND owner = %s AND id = %s").format(
                        self._records
                    ),
                    (kind, owner, record_id),
                )
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE owner = %s AND parent = %s").format(
                        self._records
                    ),
                    (owner, record_id),
                )
        return None

    def _put(self, record: ThreadRecord) -> tuple[sql.Composed, tuple[Any, ...]]:
        body = dump_body(record.body)
        query = sql.SQL(
            f"INSERT INTO {{}} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (kind, owner, id) DO UPDATE SET thread_id = EXCLUDED.thread_id, "
            "parent = EXCLUDED.parent, body = EXCLUDED.body, created_at = EXCLUDED.created_at"
        ).format(self._records)
        args = (
            record.kind,
            record.owner,
            record.id,
            record.thread_id,
            record.parent,
            body,
            record.created_at or time.time(),
        )
        return query, args

    async def get_record(
        self, kind: str, record_id: str, *, owner: str = ""
    ) -> ThreadRecord | None:
        """The record, or None."""
        rows = await self._fetch(
            sql.SQL(
                f"SELECT {_COLUMNS} FROM {{}} WHERE kind = %s AND owner = %s AND id = %s"
            ).format(self._records),
            (kind, owner, record_id),
        )
        return _record(rows[0]) if rows else None

    async def list_records(
        self, kind: str, *, owner: str = "", parent: str | None = None, limit: int = 100
    ) -> list[ThreadRecord]:
        """Records of one kind and owner (and parent), newest first."""
        where: LiteralString = "owner = %s AND kind = %s"
        if parent is not None:
            where += " AND parent = %s"
        args: list[Any] = [owner, kind, *([parent] if parent is not None else []), limit]
        rows = await self._fetch(
            sql.SQL(
                f"SELECT {_COLUMNS} FROM {{}} WHERE {where} ORDER BY created_at DESC LIMIT %s"
            ).format(self._records),
            args,
        )
        return [_record(r) for r in rows]

    async def claim_record(
        self, kind: str, record_id: str, *, owner: str = "", stale_after: float
    ) -> ThreadRecord | None:
        """Claim a record id: None when claimed now, else the record that holds it."""
        check_record_key(kind, record_id)
        while True:
            now = time.time()
            claimed = await self._fetch(
                sql.SQL(
                    "INSERT INTO {0} (kind, owner, id, created_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (kind, owner, id) DO UPDATE SET created_at = EXCLUDED.created_at "
                    "WHERE {0}.body IS NULL AND {0}.created_at < %s RETURNING id"
                ).format(self._records),
                (kind, owner, record_id, now, now - stale_after),
            )
            if claimed:
                return None
            found = await self.get_record(kind, record_id, owner=owner)
            if found is not None:
                return found
            # Released between the two statements: claim again.

    async def release_claim(self, kind: str, record_id: str, *, owner: str = "") -> None:
        """Drop an unanswered claim."""
        await self._fetch(
            sql.SQL(
                "DELETE FROM {} WHERE kind = %s AND owner = %s AND id = %s AND body IS NULL"
            ).format(self._records),
            (kind, owner, record_id),
        )
