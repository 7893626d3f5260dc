"""Records beside threads, and batches that commit thread writes and records together.

A database of threads (SQLite file, PostgreSQL schema) can keep small JSON documents beside its
threads: :class:`ThreadRecord`. The server keeps its response objects, conversations, runs and
idempotency answers this way; a CLI can keep a thread's ``serialize()`` state beside its messages.

What makes records worth having in the thread's own database is :class:`ThreadBatch`: a turn's
append (or a fork, a rewrite, a delete) and the records that describe it commit in **one**
transaction, so a crash keeps all of them or none. Build a batch, then hand it to
:meth:`RecordDatabase.commit`::

    batch = ThreadBatch()
    batch.append(thread_id, turn, expected_version=version)
    batch.put(ThreadRecord(kind="thread_state", id=thread_id, thread_id=thread_id, body=state))
    await database.commit(batch)

The operations run in the order they were added; the first that fails rolls the whole batch back
and raises (``ConcurrentThreadUpdateError`` for a version that moved or a fork id that exists,
``ValueError`` for a fork point past the thread, ``StoreError`` for anything else).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeAlias

from threadline.threads.state import check_thread_id
from threadline.types.messages import ChatMessage

__all__ = [
    "AppendOp",
    "dump_body",
    "BatchOp",
    "DeleteRecordOp",
    "DeleteThreadOp",
    "ForkOp",
    "PutOp",
    "ReplaceOp",
    "ThreadBatch",
    "ThreadRecord",
    "check_record_key",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRecord:
    """A JSON document kept beside the threads of a database.

    Records are keyed by ``(kind, owner, id)``: every read names the owner, so two owners never
    see each other's records (the server's API keys are owners; single-user programs leave it
    empty).
    """

    kind: str
    """What the record is, e.g. ``"response"`` or ``"thread_state"``."""
    id: str
    body: dict[str, Any] | None = None
    """The document, JSON-able. ``None`` only for a claim not yet answered (see claims)."""
    owner: str = ""
    thread_id: str | None = None
    """The thread the record describes, if any (a conversation's thread, a saved state's)."""
    parent: str | None = None
    """The id of the record this one belongs to (a run's thread): listed and deleted with it."""
    created_at: float = 0.0
    """Seconds since the epoch; 0 means "now" when written. Lists are newest first by it."""


_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dump_body(body: dict[str, Any] | None) -> str | None:
    """A record's body as the compact JSON text the databases keep (``None`` stays ``None``)."""
    return None if body is None else _DUMP(body)


def check_record_key(kind: str, record_id: str) -> None:
    """Refuse an empty kind or id (``ValueError``): a record must be findable again."""
    if not kind or not isinstance(kind, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"a record needs a non-empty kind, got {kind!r}")
    if not record_id or not isinstance(record_id, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"a record needs a non-empty id, got {record_id!r}")


@dataclass(frozen=True, slots=True)
class AppendOp:
    """Append ``messages`` to a thread, checked against ``expected_version`` when given."""

    thread_id: str
    messages: tuple[ChatMessage, ...]
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class ForkOp:
    """Make ``child_id`` a fork of ``thread_id`` at ``at`` (its whole length when None)."""

    thread_id: str
    child_id: str
    at: int | None


@dataclass(frozen=True, slots=True)
class ReplaceOp:
    """Rewrite a thread's messages, if it still holds ``expected_version``; forks keep theirs."""

    thread_id: str
    messages: tuple[ChatMessage, ...]
    expected_version: int


@dataclass(frozen=True, slots=True)
class DeleteThreadOp:
    """Delete a thread; forks of it keep the history they shared."""

    thread_id: str


@dataclass(frozen=True, slots=True)
class PutOp:
    """Insert or replace a record."""

    record: ThreadRecord


@dataclass(frozen=True, slots=True)
class DeleteRecordOp:
    """Delete a record and the records whose ``parent`` it is (of the same owner)."""

    kind: str
    id: str
    owner: str


BatchOp: TypeAlias = AppendOp | ForkOp | ReplaceOp | DeleteThreadOp | PutOp | DeleteRecordOp
"""One write of a batch."""


@dataclass(slots=True)
class ThreadBatch:
    """Thread writes and records that commit together, in the order they were added."""

    ops: list[BatchOp] = field(default_factory=lambda: [])

    def __bool__(self) -> bool:
        return bool(self.ops)

    def append(
        self,
        thread_id: str,
        messages: Sequence[ChatMessage],
        *,
        expected_version: int | None = None,
    ) -> Self:
        """Append ``messages`` (an empty list only checks the version)."""
        check_thread_id(thread_id, error=ValueError)
        self.ops.append(AppendOp(thread_id, tuple(messages), expected_version))
        return self

    def fork(self, thread_id: str, child_id: str, *, at: int | None = None) -> Self:
        """Branch ``thread_id`` into the new thread ``child_id`` (its first ``at`` messages)."""
        check_thread_id(thread_id, error=ValueError)
        check_thread_id(child_id, error=ValueError)
        self.ops.append(ForkOp(thread_id, child_id, at))
        return self

    def replace(
        self, thread_id: str, messages: Sequence[ChatMessage], *, expected_version: int
    ) -> Self:
        """Rewrite a thread's whole history (e.g. one message removed from it)."""
        check_thread_id(thread_id, error=ValueError)
        self.ops.append(ReplaceOp(thread_id, tuple(messages), expected_version))
        return self

    def delete_thread(self, thread_id: str) -> Self:
        """Delete a thread (its forks keep what they shared)."""
        check_thread_id(thread_id, error=ValueError)
        self.ops.append(DeleteThreadOp(thread_id))
        return self

    def put(self, *records: ThreadRecord) -> Self:
        """Insert or replace records."""
        for record in records:
            check_record_key(record.kind, record.id)
            self.ops.append(PutOp(record))
        return self

    def delete_record(self, kind: str, record_id: str, *, owner: str = "") -> Self:
        """Delete a record and its children (records naming it as ``parent``)."""
        check_record_key(kind, record_id)
        self.ops.append(DeleteRecordOp(kind, record_id, owner))
        return self
