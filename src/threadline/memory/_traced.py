"""Memory reads and writes as spans: ``recall`` (hits, their kinds and scores), ``ingest``.

Every search and indexing write of the memory components goes through here, so a trace shows
which memories a turn was given and what it taught. Spans nest under the current span (a
context provider's ``invoking``, or the run's ``invoke_agent`` when a provider learns after a
turn). Texts and queries are recorded only when content capture is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from threadline import _tracing as tr
from threadline.memory.records import MemoryHit, MemoryKind, MemoryRecord, MemoryScope
from threadline.memory.store import MemoryStore

__all__ = ["add", "search"]


async def search(
    store: MemoryStore,
    query: str,
    *,
    scope: MemoryScope,
    kinds: Sequence[MemoryKind] | None = None,
    limit: int = 10,
    exclude_thread_id: str | None = None,
    since: datetime | None = None,
) -> list[MemoryHit]:
    """``store.search``, traced as ``recall``."""
    span = tr.start_span("recall")
    if span is None:
        return await store.search(
            query,
            scope=scope,
            kinds=kinds,
            limit=limit,
            exclude_thread_id=exclude_thread_id,
            since=since,
        )
    span.set_attribute(tr.USER_ID, scope.user_id)
    span.set_attribute("threadline.memory.limit", limit)
    if kinds is not None:
        span.set_attribute("threadline.memory.requested_kinds", tr.strings(kinds))
    if tr.capture_content():
        span.set_attribute(tr.MEMORY_QUERY, query)
    try:
        with tr.activated(span):
            hits = await store.search(
                query,
                scope=scope,
                kinds=kinds,
                limit=limit,
                exclude_thread_id=exclude_thread_id,
                since=since,
            )
    except BaseException as exc:
        tr.end_error(span, exc)
        raise
    span.set_attribute(tr.MEMORY_HITS, len(hits))
    span.set_attribute(tr.MEMORY_KINDS, tr.strings(h.record.kind for h in hits))
    span.set_attribute(tr.MEMORY_SCORES, [float(h.score) for h in hits])
    span.set_attribute("threadline.memory.ids", [h.id for h in hits])
    if tr.capture_content():
        span.set_attribute(tr.MEMORY_TEXTS, [h.text for h in hits])
    span.end()
    return hits


async def add(store: MemoryStore, records: Sequence[MemoryRecord], *, operation: str) -> None:
    """``store.add``, traced as ``operation`` (``ingest``, ``remember``, ``extract``...)."""
    span = tr.start_span(operation)
    if span is None:
        await store.add(records)
        return
    span.set_attribute(tr.MEMORY_RECORDS, len(records))
    span.set_attribute(tr.MEMORY_KINDS, tr.strings(r.kind for r in records))
    if records:
        span.set_attribute(tr.USER_ID, records[0].scope.user_id)
    if tr.capture_content():
        span.set_attribute(tr.MEMORY_TEXTS, [r.text for r in records])
    try:
        with tr.activated(span):
            await store.add(records)
    except BaseException as exc:
        tr.end_error(span, exc)
        raise
    span.end()
