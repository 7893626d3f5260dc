"""``RedisChatMessageStore``: threads shared by many processes and hosts through Redis.

Layout, per thread ``T`` under the key prefix ``P``:

* ``P T:h``  a hash: ``version`` (message count), ``updated`` (the server's time of the last
  append, seconds), and for forks ``parent`` and ``fork`` (the parent's version when it branched);
* ``P T:m``  a list of the thread's own records (codec bytes), positions ``fork+1 .. version``;
* ``P T:t``  a list of their token counts, parallel to ``:m``;
* ``P T:c``  a set of the thread's forks.

With a ``ttl``, every append (and fork) sets the thread's keys to expire that long after it, and
extends its fork ancestors' to at least as long; a thread with forks is never shortened, a key
without an expiry never gets one from a fork, and a fork made without a ``ttl`` makes its
ancestors persistent: no parent expires while a fork that reads it lives.

Every operation that must be atomic is one Lua script, which Redis runs without interleaving any
other command: an append checks the version and pushes all of a turn's records, or does nothing;
a read sees one consistent snapshot of the thread and its fork ancestors. Scripts name the keys of
fork ancestors at run time, so this layout suits a single Redis (or a primary with replicas), not
Redis Cluster.

Needs the ``redis`` extra (redis-py >= 5, asyncio).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from threadline.exceptions import ConcurrentThreadUpdateError, StoreError, UsageError
from threadline.threads.state import check_thread_id
from threadline.threads.stores._cache import HistoryCache
from threadline.threads.stores._connections import ConnectedStore, SharedResource, redact_url
from threadline.threads.stores._redis_prune import prune_prefix, scan_threads
from threadline.threads.stores.base import (
    TokenCounter,
    check_fork_at,
    check_max_tokens,
    estimate_tokens,
)
from threadline.threads.stores.codec import (
    JSONCodec,
    MessageCodec,
    corrupt_thread_error,
    recode,
)
from threadline.threads.stores.database import ThreadInfo
from threadline.threads.stores.retention import PruneResult, cutoff_of
from threadline.threads.thread import new_thread_id
from threadline.types.messages import ChatMessage, MessageView

__all__ = ["RedisChatMessageStore", "RedisThreadDatabase"]

_CORRUPT = "THREADLINE_CORRUPT "
"""Starts the error a script returns for corrupt data, which becomes ``corrupt_thread_error``."""

_CHAIN = """
local function pack(items)
  local parts = {}
  for i, v in ipairs(items) do parts[i] = #v .. ':' .. v end
  return table.concat(parts)
end
local function corrupt(reason)
  return redis.error_reply('THREADLINE_CORRUPT ' .. reason)
end
local prefix, tid = ARGV[1], ARGV[2]
local raw = redis.call('HGET', prefix .. tid .. ':h', 'version')
local version = tonumber(raw or '0')
if not version or version < 0 then return corrupt('its version is ' .. tostring(raw)) end
local segs = {}
local seen = {}
local cur, hi = tid, version
while cur and hi > 0 do
  if seen[cur] then return corrupt('its fork parents form a loop at ' .. cur) end
  seen[cur] = true
  if redis.call('EXISTS', prefix .. cur .. ':h') == 0 then
    return corrupt('its fork ancestor ' .. cur .. ' holding messages 1 to ' .. hi .. ' is missing')
  end
  local meta = redis.call('HMGET', prefix .. cur .. ':h', 'parent', 'fork')
  local lo = tonumber(meta[2] or '0')
  if not lo or lo < 0 then
    return corrupt('the fork point of ' .. cur .. ' is ' .. tostring(meta[2]))
  end
  if hi > lo then
    table.insert(segs, {cur, lo, hi})
    hi = lo
  end
  cur = meta[1]
end
local function records(key, first, last, expected)
  local items = redis.call('LRANGE', key .. ':m', first, last)
  if #items ~= expected then
    return nil, corrupt('its version says ' .. version .. ' messages, but ' .. #items
      .. ' of the ' .. expected .. ' expected records are stored')
  end
  return items
end
"""
_TOUCH = """
local function now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local function expire(prefix, tid, ttl)
  local suffixes = {':h', ':m', ':t', ':c'}
  local function ancestors(each)
    local seen = {[tid] = true}
    local cur = redis.call('HGET', prefix .. tid .. ':h', 'parent')
    while cur and not seen[cur] do
      seen[cur] = true
      for _, s in ipairs(suffixes) do each(prefix .. cur .. s) end
      cur = redis.call('HGET', prefix .. cur .. ':h', 'parent')
    end
  end
  if ttl <= 0 then
    if ttl < 0 then ancestors(function(k) redis.call('PERSIST', k) end) end
    return
  end
  -- A thread with forks only ever lives longer: they may read it for longer than its own ttl.
  local own = redis.call('SCARD', prefix .. tid .. ':c') > 0 and 'GT' or nil
  for _, s in ipairs(suffixes) do
    if own then redis.call('PEXPIRE', prefix .. tid .. s, ttl, own)
    else redis.call('PEXPIRE', prefix .. tid .. s, ttl) end
  end
  ancestors(function(k) redis.call('PEXPIRE', k, ttl, 'GT') end)
end
"""
"""Lua helpers: the server's time as ``updated`` is written, and a thread's expiry: ``ttl`` in
milliseconds extends its ancestors' (``GT`` leaves keys without one alone) and never shortens a
thread that has forks; 0 does nothing; -1 (a fork made without a ttl) makes its ancestors
persistent, since it may read them forever."""

_APPEND = (
    _TOUCH
    + """
local meta = redis.call('HMGET', KEYS[1], 'version', 'fork')
local v, fork = tonumber(meta[1] or '0'), tonumber(meta[2] or '0')
if not v or not fork then
  return redis.error_reply('THREADLINE_CORRUPT its version is ' .. tostring(meta[1]))
end
local expected = tonumber(ARGV[1])
if expected >= 0 and expected ~= v then return {0, v} end
-- Records beyond the version would be read in place of the new ones: refuse, never misfile.
if redis.call('LLEN', KEYS[2]) ~= v - fork then
  return redis.error_reply('THREADLINE_CORRUPT its version says ' .. v .. ' messages, but '
    .. redis.call('LLEN', KEYS[2]) .. ' records of its own are stored after its fork point '
    .. fork)
end
local n = tonumber(ARGV[2])
for i = 3, 2 + n, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, 2 + n)))
end
for i = 3 + n, 2 + 2 * n, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 999, 2 + 2 * n)))
end
redis.call('HSET', KEYS[1], 'version', v + n, 'updated', now())
expire(ARGV[4 + 2 * n], ARGV[5 + 2 * n], tonumber(ARGV[3 + 2 * n]))
return {1, v + n}
"""
)

_READ_AFTER = (
    _CHAIN
    + """
local after = tonumber(ARGV[3])
local out = {version}
for i = #segs, 1, -1 do
  local s = segs[i]
  if s[3] > after then
    local from = math.max(s[2], after)
    local key = prefix .. s[1]
    local items, err = records(key, from - s[2], s[3] - s[2] - 1, s[3] - from)
    if err then return err end
    local toks = redis.call('LRANGE', key .. ':t', from - s[2], s[3] - s[2] - 1)
    if #toks ~= #items then
      return corrupt('its version says ' .. version .. ' messages, but token counts of '
        .. s[1] .. ' are missing')
    end
    table.insert(out, {s[1], from, pack(items), table.concat(toks, ',')})
  end
end
return out
"""
)

_READ_BUDGET = (
    _CHAIN
    + """
local budget = tonumber(ARGV[3])
local used, picked, full = 0, {}, false
for _, s in ipairs(segs) do
  local key = prefix .. s[1]
  local last = s[3] - s[2] - 1
  local first = last + 1
  local top = last
  while top >= 0 and not full do
    local bottom = math.max(top - 63, 0)
    local toks = redis.call('LRANGE', key .. ':t', bottom, top)
    if #toks ~= top - bottom + 1 then
      return corrupt('its version says ' .. version .. ' messages, but token counts of '
        .. s[1] .. ' are missing')
    end
    for j = #toks, 1, -1 do
      local t = tonumber(toks[j])
      if not t then
        return corrupt('the token count of message ' .. (s[2] + bottom + j) .. ' of ' .. s[1]
          .. ' is ' .. toks[j])
      end
      if used + t > budget then full = true break end
      used = used + t
      first = bottom + j - 1
    end
    top = bottom - 1
  end
  if first <= last then
    local bodies, err = records(key, first, last, last - first + 1)
    if err then return err end
    table.insert(picked, {s[1], s[2] + first, pack(bodies), ''})
  end
  if full then break end
end
local out = {version}
for i = #picked, 1, -1 do table.insert(out, picked[i]) end
return out
"""
)

_FORK = (
    _TOUCH
    + """
local prefix, parent, child = ARGV[1], ARGV[2], ARGV[3]
local v = tonumber(redis.call('HGET', prefix .. parent .. ':h', 'version') or '0')
if ARGV[4] ~= '' then
  local at = tonumber(ARGV[4])
  if at > v then return -1 - v end
  v = at
end
if redis.call('EXISTS', prefix .. parent .. ':h') == 0 then
  redis.call('HSETNX', prefix .. parent .. ':h', 'version', 0)
end
redis.call('HSET', prefix .. child .. ':h', 'version', v, 'parent', parent, 'fork', v,
  'updated', now())
redis.call('SADD', prefix .. parent .. ':c', child)
local ttl = tonumber(ARGV[5])
expire(prefix, child, ttl > 0 and ttl or -1)
return v
"""
)

_ADOPT = """
local prefix, child, parent, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = prefix .. child
if redis.call('HGET', key .. ':h', 'parent') ~= parent then return 0 end
for i = 5, 4 + n, 1000 do
  redis.call('LPUSH', key .. ':m', unpack(ARGV, i, math.min(i + 999, 4 + n)))
end
for i = 5 + n, 4 + 2 * n, 1000 do
  redis.call('LPUSH', key .. ':t', unpack(ARGV, i, math.min(i + 999, 4 + 2 * n)))
end
redis.call('HDEL', key .. ':h', 'parent')
redis.call('HSET', key .. ':h', 'fork', 0)
return 1
"""

_DELETE = """
local prefix, tid, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = prefix .. tid
if redis.call('SCARD', key .. ':c') ~= n then return 0 end
for i = 4, 3 + n do
  if redis.call('SISMEMBER', key .. ':c', ARGV[i]) == 0 then return 0 end
end
local parent = redis.call('HGET', key .. ':h', 'parent')
if parent then redis.call('SREM', prefix .. parent .. ':c', tid) end
redis.call('DEL', key .. ':h', key .. ':m', key .. ':t', key .. ':c')
return 1
"""

_Segment = tuple[bytes, int, bytes, bytes]
"""A script's answer for one stretch of history: thread id, position before it, its records
packed as netstrings (``len:bytes`` each, one reply instead of thousands to parse) and its token
counts comma-separated (empty when not asked for)."""


def _unpack(data: bytes) -> list[bytes]:
    """Split ``len:bytes`` records packed by the scripts."""
    out: list[bytes] = []
    i, end = 0, len(data)
    while i < end:
        colon = data.index(b":", i)
        start = colon + 1
        i = start + int(data[i:colon])
        out.append(data[start:i])
    return out


def ttl_milliseconds(ttl: timedelta | None) -> int:
    """A thread TTL in whole milliseconds (0: none).

    Raises:
        UsageError: the TTL is not a positive ``timedelta`` of at least a millisecond.
    """
    if ttl is None:
        return 0
    if not isinstance(ttl, timedelta) or ttl < timedelta(milliseconds=1):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise UsageError(f"a Redis thread ttl must be a positive timedelta, got {ttl!r}")
    return int(ttl.total_seconds() * 1000)


class RedisChatMessageStore(ConnectedStore):
    """A thread kept in Redis, shareable by any number of processes and hosts.

    Args:
        url: a ``redis://`` URL; the store then owns its client (close it with :meth:`aclose` or
            ``async with``). Give ``client`` instead to share one connection pool among many
            threads (recommended for servers); its owner closes it.
        client: a ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        thread_id: the thread to open or create; a new id when omitted.
        key_prefix: the namespace of every key this store writes.
        ttl: when given, the thread's keys expire this long after its last append (or its fork),
            and its fork ancestors' are extended to live at least as long.
        token_counter: counts each message's tokens when written, for bounded reads.
        codec: how records are encoded; e.g. ``EncryptedCodec(master_key)`` to encrypt them.

    Serialized state is ``{"thread_id": ..., "key_prefix": ...}``: never the URL, which may hold
    a password. Restore it through an agent whose ``chat_message_store_factory`` makes stores with
    the right connection.
    """

    kind = "redis"
    namespace_option = "key_prefix"

    def __init__(
        self,
        *,
        url: str | None = None,
        client: aioredis.Redis | None = None,
        thread_id: str | None = None,
        key_prefix: str = "threadline:",
        ttl: timedelta | None = None,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> None:
        self._ttl_ms = ttl_milliseconds(ttl)
        if (url is None) == (client is None):
            raise ValueError("give RedisChatMessageStore exactly one of url= or client=")
        if client is None:
            assert url is not None
            client = aioredis.Redis.from_url(url, decode_responses=False)  # pyright: ignore[reportUnknownMemberType]
            self._where = redact_url(url)
            self._shared = SharedResource(client.aclose)
        else:
            if client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError(
                    "RedisChatMessageStore needs a client made with decode_responses=False: "
                    "records are bytes (and ciphertext when encrypted)"
                )
            self._where = "redis"
            self._shared = SharedResource(None)
        self._shared.acquire()
        self._client = client
        self.thread_id = (
            check_thread_id(thread_id, error=ValueError) if thread_id else new_thread_id()
        )
        self.key_prefix = key_prefix
        self._count = token_counter
        self._codec: MessageCodec = codec or JSONCodec()
        self._closed = False
        self._cache = HistoryCache()
        self._scripts = {
            name: client.register_script(src)
            for name, src in (
                ("append", _APPEND),
                ("read_after", _READ_AFTER),
                ("read_budget", _READ_BUDGET),
                ("fork", _FORK),
                ("adopt", _ADOPT),
                ("delete", _DELETE),
            )
        }

    def __repr__(self) -> str:
        return f"RedisChatMessageStore({self._where!r}, thread_id={self.thread_id!r})"

    def _key(self, thread_id: str) -> str:
        return f"{self.key_prefix}{thread_id}"

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except ResponseError as exc:
            text = str(exc)
            if text.startswith(_CORRUPT):
                raise corrupt_thread_error(self.thread_id, text[len(_CORRUPT) :]) from exc
            raise StoreError(
                f"Redis at {self._where} failed on thread {self.thread_id!r}: {exc}"
            ) from exc
        except RedisError as exc:
            raise StoreError(
                f"Redis at {self._where} failed on thread {self.thread_id!r}: {exc}"
            ) from exc

    def _decode(self, segments: Sequence[_Segment]) -> list[ChatMessage]:
        decode = self._codec.decode
        out: list[ChatMessage] = []
        for seg_id, start, packed, _ in segments:
            thread_id = seg_id.decode()
            out.extend(
                decode(body, thread_id=thread_id, record=start + i + 1)
                for i, body in enumerate(_unpack(packed))
            )
        return out

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """Messages oldest first, read in one script; bounded reads touch only what they return."""
        check_max_tokens(max_tokens)
        prefix, tid = self.key_prefix, self.thread_id
        if max_tokens is not None:
            result = await self._run(
                "read_budget", [self._key(tid) + ":h"], [prefix, tid, max_tokens]
            )
            return self._decode(cast(list[_Segment], result[1:]))
        return (await self._read_all()).copy()

    async def view_messages(self) -> MessageView:
        """Every message, oldest first, without copying (see ``ChatMessageStore.view_messages``)."""
        messages = await self._read_all()
        return MessageView((messages, len(messages)))

    async def _read_all(self) -> list[ChatMessage]:
        """The cache's own list after reading what is new: never change it, copy or view it."""
        tid = self.thread_id
        prefix = self.key_prefix
        while True:  # at most twice: the second read is a full one
            start = self._cache.read_from()
            result = await self._run("read_after", [self._key(tid) + ":h"], [prefix, tid, start])
            merged = self._cache.merge(start, self._decode(cast(list[_Segment], result[1:])))
            if merged is not None:
                return merged

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append all of ``messages`` or none, the version checked inside the same script."""
        tid = self.thread_id
        encode = self._codec.encode
        bodies = [encode(m, thread_id=tid) for m in messages]
        tokens = [self._count(m) for m in messages]
        key = self._key(tid)
        expected = -1 if expected_version is None else expected_version
        ok, version = await self._run(
            "append",
            [key + ":h", key + ":m", key + ":t"],
            [expected, len(bodies), *bodies, *tokens, self._ttl_ms, self.key_prefix, tid],
        )
        if not ok:
            assert expected_version is not None
            raise ConcurrentThreadUpdateError(
                tid, expected_version=expected_version, actual_version=int(version)
            )
        self._cache.appended(messages, int(version))
        return int(version)

    async def fork(self, *, at: int | None = None) -> RedisChatMessageStore:
        """A new thread pointing at this one and its first ``at`` records (all): none copied.

        The fork shares this store's connection; close it too (or the owner of ``client`` does).

        Raises:
            ValueError: ``at`` is negative or past the thread's length.
        """
        if at is not None:
            check_fork_at(at, at, repr(self.thread_id))  # type and sign; the length in Lua
        child = new_thread_id()
        found = await self._run(
            "fork",
            [],
            [self.key_prefix, self.thread_id, child, "" if at is None else at, self._ttl_ms],
        )
        if int(found) < 0:
            check_fork_at(at, -1 - int(found), repr(self.thread_id))
        return self._sibling(child)

    async def delete(self) -> None:
        """Delete the thread's keys. Forks first get their own copy of the history they share.

        The copies are made first, then one script deletes the thread only if no fork appeared
        meanwhile (else the copying starts over), so a fork made during a delete keeps its history.
        """
        prefix, tid = self.key_prefix, self.thread_id
        key = self._key(tid)
        for _ in range(10):
            try:
                members = cast("set[bytes]", await self._client.smembers(key + ":c"))
            except RedisError as exc:
                raise StoreError(f"Redis at {self._where} failed on thread {tid!r}: {exc}") from exc
            children = sorted(m.decode() for m in members)
            if children:
                result = await self._run("read_after", [key + ":h"], [prefix, tid, 0])
                segments = cast(list[_Segment], result[1:])
                for child in children:
                    await self._adopt(child, segments)
            if await self._run("delete", [], [prefix, tid, len(children), *children]):
                self._cache.reset()
                return
        raise StoreError(
            f"thread {tid!r} kept gaining forks while being deleted from Redis at {self._where}; "
            "nothing was deleted, try again"
        )

    async def _adopt(self, child: str, segments: Sequence[_Segment]) -> None:
        try:
            raw = await self._client.hget(self._key(child) + ":h", "fork")
        except RedisError as exc:
            raise StoreError(f"Redis at {self._where} failed on thread {child!r}: {exc}") from exc
        try:
            fork_version = int(cast(bytes, raw) or 0)
        except ValueError:
            raise corrupt_thread_error(child, f"its fork point is {raw!r}, not a count") from None
        bodies: list[bytes] = []
        tokens: list[bytes] = []
        for seg_id, start, packed, packed_tokens in segments:
            seg = seg_id.decode()
            seg_bodies = _unpack(packed)
            seg_tokens = packed_tokens.split(b",") if seg_bodies else []
            for i, (body, count) in enumerate(zip(seg_bodies, seg_tokens, strict=True)):
                seq = start + i + 1
                if seq > fork_version:
                    break
                bodies.append(
                    recode(self._codec, body, from_thread=seg, to_thread=child, record=seq)
                )
                tokens.append(count)
        bodies.reverse()
        tokens.reverse()
        await self._run(
            "adopt", [], [self.key_prefix, child, self.thread_id, len(bodies), *bodies, *tokens]
        )


class RedisThreadDatabase:
    """The threads under one key prefix of a Redis server, sharing one client.

    Redis keeps threads only: it cannot put records beside a thread in the transaction of its
    append, so it is a :class:`~threadline.threads.stores.database.ThreadDatabase` but not a
    ``RecordDatabase`` (the server and the CLI's saved state need one).

    Args:
        ttl: when given, each thread's keys expire this long after its last append (see
            :class:`RedisChatMessageStore`); :meth:`delete_threads` prunes by age either way.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "threadline:",
        ttl: timedelta | None = None,
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
    ) -> None:
        ttl_milliseconds(ttl)  # refuse a bad one now, not at the first store
        self._ttl = ttl
        self._client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=False)  # pyright: ignore[reportUnknownMemberType]
        self._where = redact_url(url)
        self.key_prefix = key_prefix
        self._count = token_counter
        self._codec = codec

    def __repr__(self) -> str:
        return f"RedisThreadDatabase({self._where!r}, key_prefix={self.key_prefix!r})"

    def store(self, thread_id: str | None = None) -> RedisChatMessageStore:
        """The store of a thread under this prefix, on the database's client."""
        return RedisChatMessageStore(
            client=self._client,
            thread_id=thread_id,
            key_prefix=self.key_prefix,
            ttl=self._ttl,
            token_counter=self._count,
            codec=self._codec,
        )

    async def open(self) -> None:
        """Check that the server answers.

        Raises:
            StoreError: it does not; the message names it (without a password).
        """
        try:
            await self._client.ping()  # pyright: ignore[reportUnknownMemberType]
        except RedisError as exc:
            raise StoreError(f"Redis at {self._where} cannot be reached: {exc}") from exc

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()

    async def list_threads(self) -> list[ThreadInfo]:
        """The threads under the prefix, most recently updated first.

        Redis keeps no creation time (it reads as 0), and threads written before ``updated``
        was kept read as updated at 0 until a prune stamps them.
        """
        try:
            scanned = await scan_threads(self._client, self.key_prefix)
        except RedisError as exc:
            raise StoreError(f"Redis at {self._where} failed listing threads: {exc}") from exc
        infos = [
            ThreadInfo(tid, parent, version, 0.0, updated or 0.0)
            for tid, parent, version, _, updated in scanned
        ]
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        return infos

    async def delete_threads(
        self,
        *,
        older_than: timedelta | datetime,
        dry_run: bool = False,
        expire_records: Sequence[str] = (),
    ) -> PruneResult:
        """Delete the threads last updated before ``older_than``, forks before parents.

        Each thread is checked again and deleted by one script, so a thread appended to or
        forked meanwhile is kept whole, and so is every old thread a kept fork still reads
        (:attr:`PruneResult.kept_for_forks`). Redis keeps no records beside threads, so
        ``records`` is always 0. A thread's ``ttl`` (see the class) is the other way to bound a
        Redis store.

        Args:
            older_than: an age (a positive ``timedelta``) or an aware, past ``datetime``.
            dry_run: change nothing; the result says what would be deleted.
            expire_records: ignored: Redis keeps no records.

        Raises:
            UsageError: the age is zero or negative, or the datetime naive or in the future.
        """
        del expire_records
        cutoff = cutoff_of(older_than)
        return await prune_prefix(
            self._client, self.key_prefix, cutoff, dry_run=dry_run, where=self._where
        )
