"""``PostgresServerStorage``: server state in PostgreSQL, shared by any number of server processes.

Same layout as the SQLite storage. Appends to one container are serialized across processes with a
transaction-scoped advisory lock on the container, so two servers never interleave a turn; the
length check then rejects a turn whose history changed meanwhile.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from threadline.exceptions import StoreError
from threadline.hosting.storage.base import IdempotencyRecord, ItemsChangedError, StoredObject

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
CREATE TABLE IF NOT EXISTS tl_items (
    container TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (container, seq)
);
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
    """

    def __init__(self, url: str, *, schema: str = "threadline", max_size: int = 10) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
            raise ValueError(f"schema must be a plain SQL identifier, got {schema!r}")
        self.url = url
        self.schema = schema
        self._max_size = max_size
        self._pool: Any = None

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
                kwargs={"autocommit": False},
            )
            try:
                await pool.open(wait=True, timeout=10)
                async with pool.connection() as conn:
                    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                    await conn.execute(sql.SQL("SET search_path TO {}").format(ident))
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        await conn.execute(statement)
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
                if row[0] is not None and kind != "response":
                    await conn.execute("DELETE FROM tl_items WHERE container = %s", (row[0],))
                return True
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc

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

    async def items(self, container: str, *, upto: int | None = None) -> list[dict[str, Any]]:
        """A container's items, oldest first."""
        rows = await self._fetch(
            "SELECT body FROM tl_items WHERE container = %s AND seq <= %s ORDER BY seq",
            (container, upto if upto is not None else 2**31 - 1),
        )
        return [json.loads(r[0]) for r in rows]

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
        bodies = [json.dumps(item, ensure_ascii=False) for item in items]
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (container,))
                if copy_from is not None:
                    await conn.execute(
                        "INSERT INTO tl_items (container, seq, body) SELECT %s, seq, body "
                        "FROM tl_items WHERE container = %s AND seq <= %s",
                        (container, copy_from[0], copy_from[1]),
                    )
                cursor = await conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM tl_items WHERE container = %s", (container,)
                )
                row = await cursor.fetchone()
                length = int(row[0]) if row else 0
                if expected_len is not None and length != expected_len:
                    raise ItemsChangedError(
                        f"container {container!r} has {length} items, expected {expected_len}"
                    )
                if bodies:
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            "INSERT INTO tl_items (container, seq, body) VALUES (%s, %s, %s)",
                            [(container, length + i + 1, b) for i, b in enumerate(bodies)],
                        )
                for obj in objects:
                    await conn.execute(_PUT, _put_args(obj))
                if idempotency is not None:
                    owner, key, record = idempotency
                    await conn.execute(
                        "UPDATE tl_idempotency SET status = %s, body = %s "
                        "WHERE owner = %s AND key = %s",
                        (record.status, json.dumps(record.body, ensure_ascii=False), owner, key),
                    )
                return length + len(bodies)
        except ItemsChangedError:
            raise
        except Exception as exc:
            raise StoreError(f"PostgreSQL storage failed: {exc}") from exc

    async def replace_items(
        self, container: str, items: Sequence[dict[str, Any]], *, expected_len: int
    ) -> None:
        """Rewrite a container's items atomically, if it still holds ``expected_len`` items."""
        bodies = [json.dumps(item, ensure_ascii=False) for item in items]
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (container,))
                cursor = await conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM tl_items WHERE container = %s", (container,)
                )
                row = await cursor.fetchone()
                length = int(row[0]) if row else 0
                if length != expected_len:
                    raise ItemsChangedError(
                        f"container {container!r} has {length} items, expected {expected_len}"
                    )
                await conn.execute("DELETE FROM tl_items WHERE container = %s", (container,))
                if bodies:
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            "INSERT INTO tl_items (container, seq, body) VALUES (%s, %s, %s)",
                            [(container, i + 1, b) for i, b in enumerate(bodies)],
                        )
        except ItemsChangedError:
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
