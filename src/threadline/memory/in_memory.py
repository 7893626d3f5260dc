"""``InMemoryMemoryStore``: the reference ``MemoryStore``, for tests, examples and short processes.

It keeps records in a dict and ranks them with BM25 over the candidate set of one scope, so it is
exact but linear in the user's memories; use ``SQLiteMemoryStore`` (indexed, durable) for anything
that lasts. Scopes are enforced exactly as the durable stores enforce them: every read and delete
takes a ``MemoryScope``, and a record is visible only to its own user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from threadline.exceptions import UsageError
from threadline.memory._text import bm25_scores
from threadline.memory.records import (
    ForgetResult,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
    as_utc,
)
from threadline.threads.stores.retention import cutoff_of

__all__ = ["InMemoryMemoryStore", "forgotten_since", "in_scope"]


def forgotten_since(record: MemoryRecord, forgotten_at: datetime | None) -> bool:
    """True when ``record`` was derived before its user was forgotten (at ``forgotten_at``)."""
    return (
        forgotten_at is not None
        and record.derived_at is not None
        and as_utc(record.derived_at) < forgotten_at
    )


def in_scope(record: MemoryRecord, scope: MemoryScope) -> bool:
    """True when ``scope`` may see ``record``: same user, and agent/app equal where both are set.

    A record not tied to an agent (``agent_id=None``) is visible to every agent of its user; a
    scope without an agent sees every agent's records of the user. Never across users.
    """
    own = record.scope
    if own.user_id != scope.user_id:
        return False
    for name in ("agent_id", "app_id"):
        wanted, actual = getattr(scope, name), getattr(own, name)
        if wanted is not None and actual is not None and wanted != actual:
            return False
    return True


def _check_scope(scope: object) -> MemoryScope:
    if not isinstance(scope, MemoryScope):
        raise UsageError(
            f"memory store calls need scope=MemoryScope(user_id=...), got {scope!r}: memories "
            "are read and deleted one user at a time"
        )
    return scope


class InMemoryMemoryStore:
    """A ``MemoryStore`` in a dict: lexical (BM25) search, nothing persisted.

    Args:
        recency_weight: a small bonus for newer ``occurred_at`` among equally relevant records.
    """

    def __init__(self, *, recency_weight: float = 0.01) -> None:
        self._records: dict[str, MemoryRecord] = {}
        self._recency_weight = recency_weight
        self._lock = asyncio.Lock()
        self._forgotten: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._records)

    async def add(self, records: Sequence[MemoryRecord]) -> None:
        """Store records; an existing id is replaced (searchable at once)."""
        for record in records:
            if not isinstance(record, MemoryRecord):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise UsageError(f"MemoryStore.add takes MemoryRecords, got {record!r}")
        async with self._lock:
            for record in records:
                if forgotten_since(record, self._forgotten.get(record.scope.user_id)):
                    continue
                stored = record
                if record.occurred_at is not None:
                    stored = replace(stored, occurred_at=as_utc(record.occurred_at))
                self._records[record.id] = stored

    def _candidates(
        self,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None,
        thread_id: str | None,
        include_superseded: bool,
    ) -> list[MemoryRecord]:
        now = datetime.now(UTC)
        return [
            r
            for r in self._records.values()
            if in_scope(r, scope)
            and not r.is_expired(now)
            and (kinds is None or r.kind in kinds)
            and (thread_id is None or r.thread_id == thread_id)
            and (include_superseded or r.is_valid)
        ]

    async def search(
        self,
        query: str,
        *,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None = None,
        limit: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        exclude_thread_id: str | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryHit]:
        """The scope's records ranked by BM25 (a little recency breaks ties); no match, no hit."""
        scope = _check_scope(scope)
        candidates = [
            r
            for r in self._candidates(scope, kinds, None, include_superseded)
            if (exclude_thread_id is None or r.thread_id != exclude_thread_id)
            and (since is None or (r.occurred_at is not None and r.occurred_at >= as_utc(since)))
            and (until is None or (r.occurred_at is not None and r.occurred_at <= as_utc(until)))
        ]
        scores = bm25_scores(query, [r.text for r in candidates])
        dated = [r.occurred_at or r.recorded_at for r in candidates]
        newest = max(dated, default=None)
        oldest = min(dated, default=None)
        span = (newest - oldest).total_seconds() if newest and oldest else 0.0
        hits: list[MemoryHit] = []
        for record, score, when in zip(candidates, scores, dated, strict=True):
            if score <= 0:
                continue
            age = (when - oldest).total_seconds() / span if span and oldest else 1.0
            hits.append(MemoryHit(record=record, score=score + self._recency_weight * age))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:limit]

    async def get(self, memory_id: str, *, scope: MemoryScope) -> MemoryRecord | None:
        """The record, or ``None`` when it is not in ``scope`` (another user's id included)."""
        scope = _check_scope(scope)
        record = self._records.get(memory_id)
        if record is None or not in_scope(record, scope) or record.is_expired():
            return None
        return record

    async def list(
        self,
        *,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None = None,
        thread_id: str | None = None,
        include_superseded: bool = False,
        limit: int | None = None,
    ) -> list[MemoryRecord]:
        """The scope's records, newest first."""
        scope = _check_scope(scope)
        records = self._candidates(scope, kinds, thread_id, include_superseded)
        records.sort(key=lambda r: r.recorded_at, reverse=True)
        return records if limit is None else records[:limit]

    async def delete(self, memory_ids: Sequence[str], *, scope: MemoryScope) -> int:
        """Delete the scope's records among ``memory_ids``; others' ids are left alone."""
        scope = _check_scope(scope)
        async with self._lock:
            gone = [
                i
                for i in memory_ids
                if (r := self._records.get(i)) is not None and in_scope(r, scope)
            ]
            for memory_id in gone:
                del self._records[memory_id]
        return len(gone)

    async def supersede(self, memory_id: str, *, scope: MemoryScope, valid_to: datetime) -> bool:
        """Mark the record superseded at ``valid_to``; kept for audit."""
        scope = _check_scope(scope)
        async with self._lock:
            record = self._records.get(memory_id)
            if record is None or not in_scope(record, scope):
                return False
            self._records[memory_id] = replace(record, valid_to=as_utc(valid_to))
        return True

    async def prune(
        self, *, older_than: timedelta | datetime, dry_run: bool = False
    ) -> MemoryPruneResult:
        """Delete expired records, and records superseded before ``older_than``, of every user."""
        cutoff = datetime.fromtimestamp(cutoff_of(older_than), UTC)
        now = datetime.now(UTC)
        async with self._lock:
            expired = [i for i, r in self._records.items() if r.is_expired(now)]
            superseded = [
                i
                for i, r in self._records.items()
                if r.valid_to is not None and as_utc(r.valid_to) < cutoff and not r.is_expired(now)
            ]
            if not dry_run:
                for memory_id in expired + superseded:
                    del self._records[memory_id]
        return MemoryPruneResult(
            expired=len(expired), superseded=len(superseded), cutoff=cutoff, dry_run=dry_run
        )

    async def forget(self, *, user_id: str) -> ForgetResult:
        """Delete every record of ``user_id``; records derived before now are refused from now."""
        scope = MemoryScope(user_id=user_id)
        async with self._lock:
            self._forgotten[user_id] = datetime.now(UTC)
            gone = [i for i, r in self._records.items() if r.scope.user_id == scope.user_id]
            for memory_id in gone:
                del self._records[memory_id]
        # Nothing is on disk; the process's freed memory is the garbage collector's.
        return ForgetResult(records=len(gone), purged=True)

    async def aclose(self) -> None:
        """Nothing to release."""
