"""The SQL of a prune of a PostgreSQL schema's threads: check, lock and delete in one transaction.

Prunes of one schema take turns (a transaction-level advisory lock), so several server processes
may prune at once. The ages are read, then the old rows are locked ``FOR UPDATE`` with the age
checked again on their newest version: a thread appended to after the first read drops out, and
an append or fork arriving later waits for the prune and then finds the thread gone (an append
with ``expected_version`` fails with ``ConcurrentThreadUpdateError``). Forks made before the lock
are seen by a second look at the children of the locked rows, so no kept fork loses its parent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from threadline.threads.stores.retention import PruneResult, plan_prune

__all__ = ["prune_schema"]


async def prune_schema(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    cutoff: float,
    *,
    dry_run: bool,
    expire_kinds: Sequence[str],
) -> PruneResult:
    """Delete threads of ``schema`` last updated before ``cutoff``; run inside a transaction."""
    threads = sql.Identifier(schema, "threadline_threads")
    messages = sql.Identifier(schema, "threadline_messages")
    records = sql.Identifier(schema, "threadline_records")
    at = {"cutoff": cutoff}
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"threadline-prune:{schema}",)
    )
    cur = await conn.execute(
        sql.SQL(
            "SELECT thread_id, parent_id, updated_at < to_timestamp(%(cutoff)s) FROM {} "
            "WHERE updated_at < to_timestamp(%(cutoff)s) OR parent_id IS NOT NULL"
        ).format(threads),
        at,
    )
    rows: list[tuple[str, str | None, bool]] = list(await cur.fetchall())
    doomed, _ = plan_prune(rows)
    if doomed:
        cur = await conn.execute(
            sql.SQL(
                "SELECT thread_id FROM {} WHERE thread_id = ANY(%(ids)s) "
                "AND updated_at < to_timestamp(%(cutoff)s) ORDER BY thread_id FOR UPDATE"
            ).format(threads),
            {**at, "ids": doomed},
        )
        still_old = {r[0] for r in await cur.fetchall()}
        cur = await conn.execute(
            sql.SQL("SELECT thread_id, parent_id FROM {} WHERE parent_id = ANY(%(ids)s)").format(
                threads
            ),
            {"ids": list(still_old)},
        )
        forks = await cur.fetchall()
        # Plan again on what is locked now: appended-to threads and new forks are kept.
        known = {tid: (parent, tid in still_old) for tid, parent, _ in rows}
        known.update({tid: (parent, tid in still_old) for tid, parent in forks})
        doomed, _ = plan_prune((tid, p, old) for tid, (p, old) in known.items())
    old_ids = {tid for tid, _, old in rows if old}
    kept = sorted(old_ids - set(doomed))
    ids = {"ids": doomed}
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE thread_id = ANY(%(ids)s)").format(messages), ids
    )
    row = await cur.fetchone()
    message_count = int(row[0]) if row else 0
    cur = await conn.execute(
        sql.SQL("SELECT kind, owner, id FROM {} WHERE thread_id = ANY(%(ids)s)").format(records),
        ids,
    )
    doomed_records = {tuple(r) for r in await cur.fetchall()}
    # Records filed under them (an Assistants run's messages), and expired kinds.
    cur = await conn.execute(
        sql.SQL(
            "SELECT r.kind, r.owner, r.id FROM {0} r JOIN {0} t "
            "ON r.owner = t.owner AND r.parent = t.id WHERE t.thread_id = ANY(%(ids)s)"
        ).format(records),
        ids,
    )
    doomed_records |= {tuple(r) for r in await cur.fetchall()}
    if expire_kinds:
        cur = await conn.execute(
            sql.SQL(
                "SELECT kind, owner, id FROM {} WHERE kind = ANY(%(kinds)s) "
                "AND created_at < %(cutoff)s"
            ).format(records),
            {**at, "kinds": list(expire_kinds)},
        )
        doomed_records |= {tuple(r) for r in await cur.fetchall()}
    if not dry_run:
        await conn.execute(
            sql.SQL("DELETE FROM {} WHERE thread_id = ANY(%(ids)s)").format(messages), ids
        )
        if doomed_records:
            kinds, owners, record_ids = zip(*sorted(doomed_records), strict=True)
            await conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE (kind, owner, id) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))"
                ).format(records),
                (list(kinds), list(owners), list(record_ids)),
            )
        await conn.execute(
            sql.SQL("DELETE FROM {} WHERE thread_id = ANY(%(ids)s)").format(threads), ids
        )
    return PruneResult(
        cutoff=cutoff,
        threads=tuple(doomed),
        kept_for_forks=tuple(kept),
        messages=message_count,
        records=len(doomed_records),
        dry_run=dry_run,
    )
