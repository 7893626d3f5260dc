"""A prune of the threads under one Redis key prefix: one script per thread checks and deletes.

Redis has no transaction across a scan, so the threads are listed first, planned like the SQL
databases' (:func:`~threadline.threads.stores.retention.plan_prune`), and then each is deleted,
forks before parents, by a script that checks again, atomically, that it is still old and that
no fork of it still stands. A thread appended to or forked after the scan is kept, and so are its
ancestors (their scripts then find the live fork). A script is Redis's own way to check and write
without another command in between; ``WATCH`` would retry where the script simply decides.

Threads written before threads carried an ``updated`` time have no age: a prune stamps them with
the server's time, so they are pruned once they stay untouched for the retention period.
"""

from __future__ import annotations

import re
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from threadline.exceptions import StoreError
from threadline.threads.stores.retention import PruneResult, plan_prune

__all__ = ["ScannedThread", "prune_prefix", "scan_threads"]

_PRUNE = """
local prefix, tid, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = prefix .. tid
local updated = tonumber(redis.call('HGET', key .. ':h', 'updated') or '')
if not updated or updated >= cutoff then return -1 end
for _, child in ipairs(redis.call('SMEMBERS', key .. ':c')) do
  if redis.call('EXISTS', prefix .. child .. ':h') == 1 then return -1 end
end
local own = redis.call('LLEN', key .. ':m')
local parent = redis.call('HGET', key .. ':h', 'parent')
if parent then redis.call('SREM', prefix .. parent .. ':c', tid) end
redis.call('DEL', key .. ':h', key .. ':m', key .. ':t', key .. ':c')
return own
"""
"""Delete one thread if it is still old and has no fork standing; its own record count, or -1."""

_STAMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local t = redis.call('TIME')
  redis.call('HSETNX', KEYS[1], 'updated', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
end
"""

ScannedThread = tuple[str, str | None, int, int, float | None]
"""A thread found by a scan: id, parent, version, own record count (after its fork point), and
``updated`` (None when unstamped)."""


async def scan_threads(client: aioredis.Redis, prefix: str) -> list[ScannedThread]:
    """Every thread under ``prefix``, from its hash (Redis errors pass through)."""
    raw_prefix = prefix.encode()
    pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", raw_prefix) + b"*:h"
    found: list[ScannedThread] = []
    keys = client.scan_iter(match=pattern, count=500)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    async for key in keys:  # pyright: ignore[reportUnknownVariableType]
        raw = cast(bytes, key)
        fields = cast(dict[bytes, bytes], await client.hgetall(raw))
        if not fields:  # deleted since the scan saw it
            continue
        parent = fields.get(b"parent")
        version, fork = fields.get(b"version", b"0"), fields.get(b"fork", b"0")
        count = int(version) if version.isdigit() else 0
        own = count - int(fork) if fork.isdigit() else 0
        try:
            updated = float(fields[b"updated"]) if b"updated" in fields else None
        except ValueError:
            updated = None
        found.append(
            (
                raw[len(raw_prefix) : -2].decode(errors="replace"),
                parent.decode(errors="replace") if parent else None,
                count,
                own,
                updated,
            )
        )
    return found


async def prune_prefix(
    client: aioredis.Redis, prefix: str, cutoff: float, *, dry_run: bool, where: str
) -> PruneResult:
    """Delete the threads under ``prefix`` last updated before ``cutoff``, forks first."""
    try:
        scanned = await scan_threads(client, prefix)
        old = {tid for tid, _, _, _, updated in scanned if updated is not None and updated < cutoff}
        doomed, kept = plan_prune((tid, parent, tid in old) for tid, parent, *_ in scanned)
        own = {tid: n for tid, _, _, n, _ in scanned}
        if dry_run:
            return PruneResult(
                cutoff=cutoff,
                threads=tuple(doomed),
                kept_for_forks=tuple(kept),
                messages=sum(own[t] for t in doomed),
                dry_run=True,
            )
        prune = client.register_script(_PRUNE)
        stamp = client.register_script(_STAMP)
        for tid, *_, updated in scanned:
            if updated is None:
                await stamp(keys=[f"{prefix}{tid}:h"])
        deleted: list[str] = []
        messages = 0
        for tid in doomed:
            n = int(cast(int, await prune(keys=[], args=[prefix, tid, repr(cutoff)])))
            if n >= 0:
                deleted.append(tid)
                messages += n
    except RedisError as exc:
        raise StoreError(f"Redis at {where} failed pruning threads: {exc}") from exc
    gone = set(deleted)
    return PruneResult(
        cutoff=cutoff,
        threads=tuple(deleted),
        kept_for_forks=tuple(sorted(old - gone)),
        messages=messages,
    )
