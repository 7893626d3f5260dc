"""A database of threads, and the one opener from a store spec (``sqlite:PATH``, ``postgresql://``).

A :class:`ThreadDatabase` makes the ``ChatMessageStore`` of any thread it holds: the CLI's saved
threads, a server's conversations and an agent's threads are all threads of one. The SQL databases
are also :class:`RecordDatabase` s: they keep records beside the threads and commit a
:class:`~threadline.threads.stores.records.ThreadBatch` (a turn with its records) in one
transaction, which is what the server needs; Redis keeps threads only.

:func:`open_database` is how every command and the server turn a spec into a database, so
``threadline serve --store X`` and ``threadline threads --store X`` mean the same place.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from threadline._utils import redact_url
from threadline.exceptions import StoreError, UsageError
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.records import ThreadBatch, ThreadRecord

__all__ = ["RecordDatabase", "ThreadDatabase", "ThreadInfo", "open_database"]


class ThreadInfo:
    """A thread's summary row, as listed by :meth:`RecordDatabase.list_threads`.

    Values are as stored: a hand-edited SQLite file can hold any type in any column, so readers
    that show them check them (``threadline threads list`` does).
    """

    __slots__ = ("created_at", "parent_id", "thread_id", "updated_at", "version")

    def __init__(
        self,
        thread_id: str,
        parent_id: str | None,
        version: int,
        created_at: float,
        updated_at: float,
    ) -> None:
        self.thread_id = thread_id
        self.parent_id = parent_id
        self.version = version
        self.created_at = created_at
        self.updated_at = updated_at

    def __repr__(self) -> str:
        return f"ThreadInfo({self.thread_id!r}, messages={self.version})"


@runtime_checkable
class ThreadDatabase(Protocol):
    """Where threads live: makes the store of any of its threads, shares one connection."""

    kind: str
    """``"sqlite"``, ``"postgres"`` or ``"redis"``: the store kind of its threads."""

    def store(self, thread_id: str | None = None) -> ChatMessageStore:
        """The store of thread ``thread_id`` (a new thread when None), on this connection."""
        ...

    async def open(self) -> None:
        """Connect and create the tables when missing; safe from many processes at once.

        Raises:
            StoreError: the database cannot be reached or holds a layout it refuses.
        """
        ...

    async def aclose(self) -> None:
        """Release the connection; stores made from it stop working."""
        ...

    async def list_threads(self) -> list[ThreadInfo]:
        """Every thread, most recently updated first (Redis: in no particular order)."""
        ...


@runtime_checkable
class RecordDatabase(ThreadDatabase, Protocol):
    """A thread database that keeps records beside threads and commits batches atomically."""

    async def commit(self, batch: ThreadBatch) -> dict[str, int]:
        """Run the batch's writes in one transaction; each touched thread's version after it.

        Raises:
            ConcurrentThreadUpdateError: an append or rewrite found another version, or a fork's
                new id exists; nothing of the batch was written.
            ValueError: a fork point is past its thread's length; nothing was written.
        """
        ...

    async def get_record(
        self, kind: str, record_id: str, *, owner: str = ""
    ) -> ThreadRecord | None:
        """The record, or None when there is none of that kind, id and owner."""
        ...

    async def list_records(
        self, kind: str, *, owner: str = "", parent: str | None = None, limit: int = 100
    ) -> list[ThreadRecord]:
        """Records of one kind and owner (and ``parent`` when given), newest first."""
        ...

    async def claim_record(
        self, kind: str, record_id: str, *, owner: str = "", stale_after: float
    ) -> ThreadRecord | None:
        """Claim a record id: None when the caller now holds it, else the record found.

        A claim is a record with no body, written at once. A found record with a body is an
        answered claim; one without is held by someone else, unless it is older than
        ``stale_after`` seconds (its holder died), in which case it is taken over. Answer a claim
        by putting a record with a body (in the batch of the work it answers for).
        """
        ...

    async def release_claim(self, kind: str, record_id: str, *, owner: str = "") -> None:
        """Drop an unanswered claim (the work failed), so the next claim succeeds."""
        ...


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
