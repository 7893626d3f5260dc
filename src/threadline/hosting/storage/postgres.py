"""``PostgresServerStorage``: server state in PostgreSQL, shared by any number of server processes.

Same layout as the SQLite storage: conversations, Responses chains and Assistants threads are
threads of ``PostgresChatMessageStore``'s tables in the same schema (thread id = container id;
a ``previous_response_id`` branch is a fork at a position), objects and idempotency records are
rows of ``tl_objects``/``tl_idempotency``, and a turn's messages, its objects and its
idempotency answer are written in one transaction. Appends to one container are serialized across
processes with a transaction-scoped advisory lock on the container, so two servers never
interleave a turn; the version check then rejects a turn whose history changed meanwhile.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from threadline.exceptions import StoreError
from threadline.hosting.storage.base import IdempotencyRecord, ItemsChangedError, StoredObject
from threadline.hosting.storage.postgres_threads import append_rows, check_layout, fork, rewrite
from threadline.hosting.storage.sqlite_layout import item_rows

__all__ = ["PostgresServerStorage"]

_STALE_CLAIM_SECONDS = 300.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tl_objects (
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    parent     TEXT,
    container  TEXT,
    upto       INTEGER,
    body       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS tl_objects_list ON tl_objects (owner, kind, parent, created_at);
CREATE TABLE IF NOT EXISTS tl_idempotency (
    owner      TEXT NOT NULL,
    key        TEXT NOT NULL,
    status     INTEGER,
    body       TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (owner, key)
);
"""

_COLUMNS = "id, kind, owner, parent, container, upto, body, created_at"


def _row(row: Sequence[Any]) -> StoredObject:
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


def _put_args(obj: StoredObject) -> tuple[Any, ...]:
    return (
        obj.id,
        obj.kind,
        obj.owner,
        obj.parent,
        obj.container,
        obj.upto,
        json.dumps(obj.body, ensure_ascii=False),
        obj.created_at or time.time(),
    )


_PUT = (
    f"INSERT INTO tl_objects ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (kind, id) DO UPDATE SET owner = EXCLUDED.owner, parent = EXCLUDED.parent, "
    "container = EXCLUDED.container, upto = EXCLUDED.upto, body = EXCLUDED.body"
)


class PostgresServerStorage:
    """Server storage in PostgreSQL (psycopg 3, async pool).

    Args:
        url: a libpq connection URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``.
        schema: the schema holding the tables (created when missing).
        max_size: the largest number of pooled connections.
        migrate: move the items of a schema made by the previous layout (``tl_items``) into
            threads when opening it; without it such a schema is refused (``StoreError``).
    """

    def __init__(
        self, url: str, *, schema: str = "threadline", max_size: int = 10, migrate: bool = False
    ) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
            raise ValueError(f"schema must be a plain SQL identifier, got {schema!r}")
        self.url = url
        self.schema = schema
        self._max_size = max_size
        self._migrate = migrate
        self._pool: Any = None

    async def open(self) -> None:
        """Connect, create the schema when missing and check its layout (refused: StoreError)."""
        await self._get_pool()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            try:
                from psycopg_pool import AsyncConnectionPool
            except ImportError as exc:
                raise StoreError(
                    "PostgreSQL storage needs psycopg and psycopg-pool: "
                    "pip install 'threadline[postgres]'"
                ) from exc
            from psycopg import sql

            ident = sql.Identifier(self.schema)

            async def configure(conn: Any) -> None:
                await conn.execute(sql.SQL("SET search_path TO {}").format(ident))
                await conn.commit()

            pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._max_size,
                open=False,
                configure=configure,
                kwargs={"autocommit": True},  # writes of several statements open a transaction
            )
            try:
                await pool.open(wait=True, timeout=10)
                async with pool.connection() as conn:
                    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                    await conn.execute(sql.SQL("SET search_path TO {}").format(ident))
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        await conn.execute(statement)
                    await conn.commit()
                from threadline.threads.stores.postgres import PostgresChatMessageStore

                await PostgresChatMessageStore(pool=pool, schema=self.schema).setup()
                async with pool.connection() as conn, conn.transaction():
                    await check_layout(conn, migrate=self._migrate)
            except Exception as exc:
                await pool.close()
                raise StoreError(f"cannot open PostgreSQL storage at {self.url!r}: {exc}") from exc
            self._pool = pool
        return self._pool

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql, args)
                return await cursor.fetchall() if cursor.description else []
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc

    async def get(self, owner: str, kind: str, object_id: str) -> StoredObject | None:
        """The object, or ``None`` when missing or owned by someone else."""
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM tl_objects WHERE kind = %s AND id = %s AND owner = %s",
            (kind, object_id, owner),
        )
        return _row(rows[0]) if rows else None

    async def put(self, obj: StoredObject) -> None:
        """Insert or replace an object."""
        await self._fetch(_PUT, _put_args(obj))

    async def delete(self, owner: str, kind: str, object_id: str) -> bool:
        """Delete an object with its children and its container's items."""
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "DELETE FROM tl_objects WHERE kind = %s AND id = %s AND owner = %s "
                    "RETURNING container",
                    (kind, object_id, owner),
                )
                row = await cursor.fetchone()
                if row is None:
                    return False
                await conn.execute(
                    "DELETE FROM tl_objects WHERE parent = %s AND owner = %s", (object_id, owner)
                )
                container = row[0] if kind != "response" else None
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc
        if container is not None:
            # After the object's transaction: a crash between leaves an unreachable thread,
            # never an object without its history. Forks of it keep what they share.
            await self._thread(container).delete()
        return True

    async def list_objects(
        self, owner: str, kind: str, *, parent: str | None = None, limit: int = 20
    ) -> list[StoredObject]:
        """Objects of one kind (and parent), newest first."""
        sql = f"SELECT {_COLUMNS} FROM tl_objects WHERE owner = %s AND kind = %s"
        args: list[Any] = [owner, kind]
        if parent is not None:
            sql += " AND parent = %s"
            args.append(parent)
        sql += " ORDER BY created_at DESC LIMIT %s"
        args.append(limit)
        return [_row(r) for r in await self._fetch(sql, args)]

    def _thread(self, container: str) -> Any:
        from threadline.threads.stores.postgres import PostgresChatMessageStore

        return PostgresChatMessageStore(pool=self._pool, thread_id=container, schema=self.schema)

    async def items(self, container: str, *, upto: int | None = None) -> list[dict[str, Any]]:
        """A container's items, oldest first (following a branch into the prefix it shares)."""
        await self._get_pool()
        messages = await self._thread(container).list_messages()
        if upto is not None:
            messages = messages[:upto]
        return [m.to_dict() for m in messages]

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
        """Append items and save objects atomically, optionally branching from another container."""
        rows = item_rows(items)
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (container,))
                if copy_from is not None:
                    await fork(conn, copy_from[0], container, copy_from[1])
                version = await append_rows(conn, container, rows, expected_len)
                for obj in objects:
                    await conn.execute(_PUT, _put_args(obj))
                if idempotency is not None:
                    owner, key, record = idempotency
                    await conn.execute(
                        "UPDATE tl_idempotency SET status = %s, body = %s "
                        "WHERE owner = %s AND key = %s",
                        (record.status, json.dumps(record.body, ensure_ascii=False), owner, key),
                    )
                return version
        except (ItemsChangedError, StoreError):
            raise
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc

    async def replace_items(
        self, container: str, items: Sequence[dict[str, Any]], *, expected_len: int
    ) -> None:
        """Rewrite a container's items atomically, if it still holds ``expected_len`` items."""
        rows = item_rows(items)
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (container,))
                await rewrite(conn, container, rows, expected_len)
        except (ItemsChangedError, StoreError):
            raise
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc

    async def idempotency_begin(self, owner: str, key: str) -> IdempotencyRecord | None | bool:
        """Claim a key, or report its stored outcome, or ``None`` while another request runs it."""
        now = time.time()
        rows = await self._fetch(
            "INSERT INTO tl_idempotency (owner, key, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (owner, key) DO UPDATE SET created_at = EXCLUDED.created_at "
            "WHERE tl_idempotency.status IS NULL AND tl_idempotency.created_at < %s "
            "RETURNING owner",
            (owner, key, now, now - _STALE_CLAIM_SECONDS),
        )
        if rows:
            return True
        found = await self._fetch(
            "SELECT status, body FROM tl_idempotency WHERE owner = %s AND key = %s", (owner, key)
        )
        if not found or found[0][0] is None:
            return None
        return IdempotencyRecord(status=found[0][0], body=json.loads(found[0][1]))

    async def idempotency_finish(self, owner: str, key: str, record: IdempotencyRecord) -> None:
        """Store the outcome of a claimed key."""
        await self._fetch(
            "UPDATE tl_idempotency SET status = %s, body = %s WHERE owner = %s AND key = %s",
            (record.status, json.dumps(record.body, ensure_ascii=False), owner, key),
        )

    async def idempotency_release(self, owner: str, key: str) -> None:
        """Forget a claim whose request failed."""
        await self._fetch(
            "DELETE FROM tl_idempotency WHERE owner = %s AND key = %s AND status IS NULL",
            (owner, key),
        )

    async def drop_schema(self) -> None:
        """Drop the schema with everything in it (for tests)."""
        await self._fetch(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE', ())

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
