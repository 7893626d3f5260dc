"""``ServerConfig.retention``: the server deletes its old conversations while it runs.

Every ``retention / 10`` (at most hourly, and once at start-up) the server deletes the threads
last updated longer ago than ``retention`` with everything kept for them (response objects,
conversation and Assistants objects), and ``Idempotency-Key`` answers and approval claims of that
age (:meth:`~threadline.threads.stores.database.PrunableDatabase.delete_threads`). Several server
processes on one PostgreSQL schema may all do it: their prunes take turns under an advisory lock
and deleting what is already gone does nothing. A prune that fails is logged and tried again at
the next interval; it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from threadline.exceptions import StoreError, UsageError
from threadline.hosting._approvals import KIND as APPROVAL_KIND
from threadline.hosting._idempotency import KIND as IDEMPOTENCY_KIND
from threadline.threads.stores.database import PrunableDatabase, ThreadDatabase

__all__ = ["prune_interval", "pruner", "run_retention"]

log = logging.getLogger("threadline.hosting")

EXPIRING_RECORDS = (IDEMPOTENCY_KIND, APPROVAL_KIND)
"""Records kept by no thread that a retention period ends: ``Idempotency-Key`` answers, and the
claims on answered approval requests. A claim only guards the moments its answer runs in (and
names the response that answered, for a clearer error on a second answer); once older than the
retention its thread says the request is answered, or the thread itself is gone. Without this,
every approval ever answered kept a record for the server's lifetime."""


def prune_interval(retention: timedelta) -> float:
    """Seconds between prunes: a tenth of the retention, at most an hour."""
    return min(retention.total_seconds() / 10, 3600.0)


def pruner(database: ThreadDatabase, retention: timedelta | None) -> PrunableDatabase | None:
    """The database to prune, or None without retention.

    Raises:
        UsageError: retention is not a positive age, or the database cannot delete threads.
    """
    if retention is None:
        return None
    if not isinstance(retention, timedelta) or retention <= timedelta(0):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise UsageError(f"retention must be a positive timedelta, got {retention!r}")
    if not isinstance(database, PrunableDatabase):
        raise UsageError(
            f"retention needs a database that deletes old threads; {database!r} cannot"
        )
    return database


async def run_retention(database: PrunableDatabase, retention: timedelta) -> None:
    """Prune now and then every :func:`prune_interval` until cancelled."""
    every = prune_interval(retention)
    while True:
        try:
            result = await database.delete_threads(
                older_than=retention, expire_records=EXPIRING_RECORDS
            )
            if result.threads or result.records:
                log.info(
                    "retention: deleted %d threads (%d messages) and %d records older than %s",
                    len(result.threads),
                    result.messages,
                    result.records,
                    retention,
                )
        except StoreError as exc:
            log.warning("retention: prune failed, trying again in %.0f s: %s", every, exc)
        await asyncio.sleep(every)
