"""``MemoryStore`` and ``Embedder``: where long-term memories live, how text becomes vectors.

Scopes are enforced by the store on every call, not by convention: each read, delete and
invalidation takes a ``MemoryScope`` (which cannot be built without a user), and ``forget`` removes
everything derived from a user (records, full-text index entries, embeddings) in every table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from threadline.memory.records import ForgetResult, MemoryHit, MemoryKind, MemoryRecord, MemoryScope

__all__ = ["Embedder", "MemoryStore"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    @property
    def name(self) -> str:
        """Identifies the model; a store refuses to mix vectors of two embedders."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


@runtime_checkable
class MemoryStore(Protocol):
    """Long-term memories of many users, each read and write confined to one user's scope."""

    async def add(self, records: Sequence[MemoryRecord]) -> None:
        """Store records (indexed for search at once: read-your-writes)."""
        ...

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
        """The records of ``scope`` most relevant to ``query``, best first.

        ``since``/``until`` bound ``occurred_at``; ``exclude_thread_id`` leaves out the current
        thread (whose messages the model already sees).
        """
        ...

    async def get(self, memory_id: str, *, scope: MemoryScope) -> MemoryRecord | None:
        """One record, or ``None`` if it does not exist *in this scope*."""
        ...

    async def list(
        self,
        *,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None = None,
        thread_id: str | None = None,
        include_superseded: bool = False,
        limit: int | None = None,
    ) -> list[MemoryRecord]:
        """Records of ``scope``, newest first."""
        ...

    async def delete(self, memory_ids: Sequence[str], *, scope: MemoryScope) -> int:
        """Delete records (and their index entries, embeddings) of ``scope``; returns how many."""
        ...

    async def supersede(self, memory_id: str, *, scope: MemoryScope, valid_to: datetime) -> bool:
        """Mark a record as no longer valid (kept for audit); False if not found in ``scope``."""
        ...

    async def forget(self, *, user_id: str) -> ForgetResult:
        """Delete everything derived from ``user_id`` in every table and index.

        From then on, records derived before the call (``MemoryRecord.derived_at``) are refused.
        The result counts the records and says truthfully whether the words also left the
        store's files, and if not, where they are and what removes them.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and worker threads."""
        ...
