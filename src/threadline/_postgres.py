"""What PostgreSQL-backed stores share: their connection pool and their one-time schema setup.

Used by the message store and the memory store so both make pools the same way (autocommit
connections, opened lazily, a name for error messages that never shows a password) and create
their tables the same way (once per pool, serialized across processes by an advisory lock).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from threadline._utils import redact_url

__all__ = ["StorePool", "is_set_up", "set_up_once", "store_pool"]


@dataclass(frozen=True, slots=True)
class StorePool:
    """A store's pool, whether the store owns it (and must close it), and where it points."""

    pool: AsyncConnectionPool[Any]
    owned: bool
    where: str
    """The DSN with its password removed, for error messages; ``"postgresql"`` for a given pool."""


def store_pool(
    dsn: str | None,
    pool: AsyncConnectionPool[Any] | None,
    *,
    store: str,
    connect_timeout: float,
    max_size: int = 4,
) -> StorePool:
    """The pool of a store made with exactly one of ``dsn`` and ``pool``.

    Raises:
        ValueError: both or neither were given; the message names ``store``.
    """
    if (dsn is None) == (pool is None):
        raise ValueError(f"give {store} exactly one of dsn= or pool=")
    if pool is not None:
        return StorePool(pool=pool, owned=False, where="postgresql")
    assert dsn is not None
    made: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=connect_timeout,
        kwargs={"autocommit": True},
    )
    return StorePool(pool=made, owned=True, where=redact_url(dsn) if "://" in dsn else "postgresql")


_ready: weakref.WeakKeyDictionary[AsyncConnectionPool[Any], set[str]] = weakref.WeakKeyDictionary()
"""The setup keys done per pool, so each store's tables are created once per process and pool."""


def is_set_up(pool: AsyncConnectionPool[Any], key: str) -> bool:
    """Whether :func:`set_up_once` already ran for ``key`` on ``pool``."""
    return key in _ready.get(pool, ())


async def set_up_once(
    pool: AsyncConnectionPool[Any], *, owned: bool, key: str, schema: sql.Composable
) -> None:
    """Run ``schema`` (idempotent DDL) once per pool and ``key``; safe from many processes.

    Concurrent ``CREATE ... IF NOT EXISTS`` can still collide, so an advisory lock on ``key``
    serializes them. A pool the store owns is opened here on first use. psycopg errors propagate
    for the store to wrap with its own context.
    """
    if is_set_up(pool, key):
        return
    if owned and pool.closed:
        await pool.open(wait=True, timeout=pool.timeout)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
        await conn.execute(schema)
    _ready.setdefault(pool, set()).add(key)
