"""The one opener from a store spec: ``sqlite:PATH``, ``postgresql://...``, ``redis://...``.

:func:`open_database` is how every command and the server turn a spec into a thread database, so
``threadline serve --store X`` and the ``threadline threads`` library mean the same place by the
same words.
"""

from __future__ import annotations

import os

from threadline._utils import redact_url
from threadline.exceptions import StoreError, UsageError
from threadline.threads.stores.database import ThreadDatabase

__all__ = ["open_database"]

_FORMS = "sqlite:PATH, postgresql://USER@HOST:PORT/DB or redis://HOST:PORT/DB"


def open_database(
    spec: str, *, schema: str = "threadline", migrate: bool = False, max_connections: int = 10
) -> ThreadDatabase:
    """The thread database a spec names; nothing is connected until ``open()`` or first use.

    Args:
        spec: ``sqlite:PATH``, ``postgresql://...`` (or ``postgres://``) or ``redis://...``
            (``rediss://``).
        schema: the PostgreSQL schema (the Redis key prefix is ``{schema}:``).
        migrate: move the conversations of a server database made by an earlier threadline
            (its ``tl_items`` table) into threads; without it such a database is refused.
        max_connections: the largest PostgreSQL pool.

    Raises:
        UsageError: the spec names nothing this opener knows, or a SQLite file of an old layout
            (the message names the fix); the message lists the forms that work.
    """
    if spec.startswith("sqlite:"):
        path = spec.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise UsageError("store 'sqlite:' needs a file: sqlite:PATH (e.g. sqlite:threads.db)")
        from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

        try:
            return SQLiteThreadDatabase(os.path.expanduser(path), migrate=migrate)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    if spec.startswith(("postgresql://", "postgres://")):
        from threadline.threads.stores.postgres_database import PostgresThreadDatabase

        return PostgresThreadDatabase(
            spec, schema=schema, migrate=migrate, max_connections=max_connections
        )
    if spec.startswith(("redis://", "rediss://")):
        from threadline.threads.stores.redis import RedisThreadDatabase

        return RedisThreadDatabase(spec, key_prefix=f"{schema}:")
    raise UsageError(f"unknown store {redact_url(spec)!r}: give {_FORMS}")
