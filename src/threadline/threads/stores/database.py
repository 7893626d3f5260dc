"""A database of threads: the protocols its implementations (SQLite, PostgreSQL, Redis) keep.

A :class:`ThreadDatabase` makes the ``ChatMessageStore`` of any thread it holds: the CLI's saved
threads, a server's conversations and an agent's threads are all threads of one. The SQL databases
are also :class:`RecordDatabase` s: they keep records beside the threads and commit a
:class:`~threadline.threads.stores.records.ThreadBatch` (a turn with its records) in one
transaction, which is what the server needs; Redis keeps threads only. Open one from a spec with
:func:`~threadline.threads.stores.opener.open_database`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.retention import PruneResult

__all__ = ["PrunableDatabase", "RecordDatabase", "ThreadDatabase", "ThreadInfo"]


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


@runtime_checkable
class PrunableDatabase(ThreadDatabase, Protocol):
    """A thread database that deletes old threads: every shipped one (SQLite, PostgreSQL, Redis).

    A protocol of its own, not a method of :class:`ThreadDatabase`, so databases written before
    retention existed still are thread databases.
    """

    async def delete_threads(
        self,
        *,
        older_than: timedelta | datetime,
        dry_run: bool = False,
        expire_records: Sequence[str] = (),
    ) -> PruneResult:
        """Delete the threads last updated before ``older_than`` (see :mod:`.retention`).

        An old thread that a kept fork still reads is kept; a thread appended to while the
        prune runs is kept whole; ``dry_run`` changes nothing and says what would go. Records
        kept for a deleted thread go with it, and so do records of the ``expire_records``
        kinds created before the cutoff (a database that keeps no records ignores it).

        Raises:
            UsageError: ``older_than`` is a zero or negative age, or a naive or future datetime.
        """
        ...
