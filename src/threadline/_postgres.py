"""The connection pool a PostgreSQL-backed store uses: its own, made from a DSN, or the caller's.

Shared by the message store and the memory store so both make pools the same way: autocommit
connections (a write of several statements opens its own transaction), opened lazily on first use,
and a name for error messages that never shows a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from threadline._utils import redact_url

__all__ = ["StorePool", "store_pool"]


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
        max_size=4,
        open=False,
        timeout=connect_timeout,
        kwargs={"autocommit": True},
    )
    return StorePool(pool=made, owned=True, where=redact_url(dsn) if "://" in dsn else "postgresql")
