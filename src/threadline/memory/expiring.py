"""``ExpiringMemoryStore``: a time to live per kind of record, around any memory store.

Records expire by their ``expires_at``, but most are written by components, not by hand:
``ConversationMemory`` stores every turn, ``UserPreferencesMemory`` the facts it extracts, the
memory tools what the model chose to remember. This wrapper gives each kind a lifetime
(``ttl={"turn": timedelta(days=7)}``) without touching those components: a record it adds with
no ``expires_at`` of its own gets ``recorded_at + ttl[kind]``. Everything else is the wrapped
store's own behaviour: expired records are never recalled, and its ``prune`` deletes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast, get_args

from threadline.exceptions import UsageError
from threadline.memory.records import (
    ForgetResult,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
)
from threadline.memory.store import MemoryStore

__all__ = ["ExpiringMemoryStore"]

_KINDS: tuple[str, ...] = get_args(MemoryKind)


class ExpiringMemoryStore:
    """A memory store whose records of some kinds expire a fixed time after they are recorded.

    A record that already carries ``expires_at`` keeps it (a temporary preference stated with
    its own end), and kinds missing from ``ttl`` never expire by age. ``aclose`` closes the
    wrapped store: the wrapper owns it, like an agent owns its client.
    """

    def __init__(self, store: MemoryStore, *, ttl: Mapping[MemoryKind, timedelta]) -> None:
        """Wrap ``store``; ``ttl`` maps a kind to how long its records live.

        Raises:
            UsageError: an unknown kind, or a lifetime that is not a positive ``timedelta``.
        """
        for kind, life in ttl.items():
            if kind not in _KINDS:
                raise UsageError(
                    f"ExpiringMemoryStore(ttl=...) names the kind {kind!r}; the kinds are "
                    f"{', '.join(_KINDS)}"
                )
            value = cast(object, life)  # callers without a type checker pass anything
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise UsageError(
                    f"ExpiringMemoryStore(ttl=...) gives {kind!r} records a lifetime of "
                    f"{life!r}; give a positive timedelta, or leave the kind out to keep them"
                )
        self.store = store
        """The wrapped store: every call but ``add`` goes to it unchanged."""
        self.ttl: dict[MemoryKind, timedelta] = dict(ttl)
        """How long each kind's records live after ``recorded_at``."""

    def __repr__(self) -> str:
        return f"ExpiringMemoryStore({self.store!r}, ttl={self.ttl!r})"

    async def __aenter__(self) -> ExpiringMemoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def expiry(self, record: MemoryRecord) -> datetime | None:
        """When ``record`` expires once added: its own ``expires_at``, else its kind's lifetime."""
        if record.expires_at is not None:
            return record.expires_at
        life = self.ttl.get(record.kind)
        return None if life is None else record.recorded_at + life

    async def add(self, records: Sequence[MemoryRecord]) -> None:
        """Store ``records``, each given its kind's expiry unless it carries one.

        Anything that is not a record is passed on untouched, so the wrapped store refuses it
        with its own error.
        """
        given = cast(object, records)  # callers without a type checker pass anything
        if isinstance(given, MemoryRecord) or not isinstance(given, Sequence):
            await self.store.add(records)
            return
        items = cast(Sequence[object], given)
        await self.store.add(
            [
                replace(r, expires_at=self.expiry(r)) if isinstance(r, MemoryRecord) else r
                for r in items
            ]  # pyright: ignore[reportArgumentType]
        )

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
        """The wrapped store's search."""
        return await self.store.search(
            query,
            scope=scope,
            kinds=kinds,
            limit=limit,
            since=since,
            until=until,
            exclude_thread_id=exclude_thread_id,
            include_superseded=include_superseded,
        )

    async def get(self, memory_id: str, *, scope: MemoryScope) -> MemoryRecord | None:
        """The wrapped store's record."""
        return await self.store.get(memory_id, scope=scope)

    async def list(
        self,
        *,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None = None,
        thread_id: str | None = None,
        include_superseded: bool = False,
        limit: int | None = None,
    ) -> list[MemoryRecord]:
        """The wrapped store's records."""
        return await self.store.list(
            scope=scope,
            kinds=kinds,
            thread_id=thread_id,
            include_superseded=include_superseded,
            limit=limit,
        )

    async def delete(self, memory_ids: Sequence[str], *, scope: MemoryScope) -> int:
        """Delete from the wrapped store."""
        return await self.store.delete(memory_ids, scope=scope)

    async def supersede(self, memory_id: str, *, scope: MemoryScope, valid_to: datetime) -> bool:
        """Supersede in the wrapped store."""
        return await self.store.supersede(memory_id, scope=scope, valid_to=valid_to)

    async def forget(self, *, user_id: str) -> ForgetResult:
        """Forget the user in the wrapped store."""
        return await self.store.forget(user_id=user_id)

    async def prune(
        self, *, older_than: timedelta | datetime, dry_run: bool = False
    ) -> MemoryPruneResult:
        """The wrapped store's ``prune``: its expired records include those expired by kind.

        Raises:
            UsageError: the wrapped store cannot prune.
        """
        prune = getattr(self.store, "prune", None)
        if prune is None:
            raise UsageError(f"{self.store!r} has no prune; records still expire from reads")
        result: MemoryPruneResult = await prune(older_than=older_than, dry_run=dry_run)
        return result

    async def aclose(self) -> None:
        """Close the wrapped store."""
        await self.store.aclose()
