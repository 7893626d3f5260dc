"""``PostgresChatMessageStore``: threads shared by many processes and hosts through PostgreSQL.

Layout (in a schema of the caller's choice, created on first use or by :meth:`setup`):

* ``threadline_threads``: one row per thread: ``version`` (message count), and for forks
  ``parent_id`` and ``fork_version`` (the parent's version when it branched);
* ``threadline_messages``: one row per message, primary key ``(thread_id, seq)`` (the per-thread
  sequence; the unique constraint is the last line of defence against two writers taking the same
  position), with its token count and its codec record.

An append is one SQL statement: it bumps the thread's version only if it still equals the
expected one (the row lock makes a second writer wait and then re-check) and inserts every
message of the turn at the positions that version implies. One statement is one transaction, so
a turn is stored whole or not at all, whichever process or host wrote it.

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from threadline._postgres import is_set_up, set_up_once, store_pool
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError
from threadline.threads.state import check_thread_id
from threadline.threads.stores._cache import HistoryCache
from threadline.threads.stores._connections import ConnectedStore, SharedResource
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
from threadline.threads.thread import new_thread_id
from threadline.types.messages import ChatMessage, MessageView

__all__ = ["PostgresChatMessageStore"]

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {threads} (
    thread_id    text PRIMARY KEY,
    parent_id    text,
    fork_version bigint NOT NULL DEFAULT 0,
    version      bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS threadline_threads_parent ON {threads} (parent_id)
    WHERE parent_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS {messages} (
    thread_id  text NOT NULL,
    seq        bigint NOT NULL,
    message_id text NOT NULL,
    tokens     integer NOT NULL,
    body       bytea NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
CREATE TABLE IF NOT EXISTS {records} (
    kind       text NOT NULL,
    owner      text NOT NULL,
    id         text NOT NULL,
    thread_id  text,
    parent     text,
    body       text,
    created_at double precision NOT NULL,
    PRIMARY KEY (kind, owner, id)
);
CREATE INDEX IF NOT EXISTS threadline_records_list ON {records} (owner, kind, parent, created_at);
"""

_APPEND = """
WITH upd AS (
    UPDATE {threads} SET version = version + %(n)s, updated_at = now()
    WHERE thread_id = %(tid)s AND (%(exp)s::bigint IS NULL OR version = %(exp)s::bigint)
    RETURNING version
), ins AS (
    INSERT INTO {messages} (thread_id, seq, message_id, tokens, body)
    SELECT %(tid)s, upd.version - %(n)s + r.ord, r.mid, r.tok, r.body
    FROM upd, unnest(%(mids)s::text[], %(toks)s::integer[], %(bodies)s::bytea[])
        WITH ORDINALITY AS r(mid, tok, body, ord)
)
SELECT version FROM upd
"""

_CHAIN = """
WITH RECURSIVE chain(thread_id, parent_id, lo, hi, depth, path, looped) AS (
    SELECT thread_id, parent_id, fork_version, version, 0, ARRAY[thread_id], false
    FROM {threads} WHERE thread_id = %(tid)s
    UNION ALL
    SELECT p.thread_id, p.parent_id, p.fork_version, LEAST(c.lo, p.version), c.depth + 1,
        c.path || p.thread_id, p.thread_id = ANY(c.path)
    FROM {threads} p JOIN chain c ON p.thread_id = c.parent_id
    WHERE NOT c.looped
)
"""
"""The thread and its fork ancestors. ``looped`` marks a parent already on the path (corrupt
data): the walk stops there instead of recursing forever, and the reader raises."""

_HEAD_READ = """
SELECT h.parent_id, h.fork_version, h.version, m.seq, m.tokens, m.body
FROM {threads} h LEFT JOIN LATERAL (
    SELECT seq, tokens, body FROM {messages}
    WHERE thread_id = h.thread_id AND seq > GREATEST(h.fork_version, %(after)s) AND seq <= h.version
) m ON true
WHERE h.thread_id = %(tid)s
"""
"""The thread's row and its own rows after ``after``: the whole read when no fork ancestor holds
rows after ``after`` (every incremental read of a thread, and every read of an unforked one)."""

_RANGE = """
SELECT seq, tokens, body FROM {messages}
WHERE thread_id = %(tid)s AND seq > %(lo)s AND seq <= %(hi)s
"""
"""One stretch of an ancestor's rows. Queried per stretch, never joined to the fork chain: the
planner cannot know the chain is short and would scan the whole table."""

_SEGMENTS = (
    _CHAIN + "SELECT thread_id, lo, hi, looped FROM chain WHERE hi > lo OR looped ORDER BY depth"
)

_WALK = """
WITH RECURSIVE walk(seq, tokens, body, run) AS (
    SELECT seq, tokens, body, tokens::bigint FROM {messages}
    WHERE thread_id = %(tid)s AND seq = %(hi)s AND seq > %(lo)s AND tokens <= %(budget)s
  UNION ALL
    SELECT m.seq, m.tokens, m.body, w.run + m.tokens
    FROM walk w JOIN {messages} m ON m.thread_id = %(tid)s AND m.seq = w.seq - 1
    WHERE m.seq > %(lo)s AND w.run + m.tokens <= %(budget)s
)
SELECT seq, tokens, body, run FROM walk
"""
"""The newest rows of the stretch ``(lo, hi]`` of one thread that fit ``budget``, newest first.

A walk down the primary key, one equality lookup per row, stopping at the first row over budget:
only the rows returned are ever read, and no plan the optimizer could pick (a bitmap scan and a
sort of the whole thread, say, when its statistics mislead it) reads more."""

_HEAD_WALK = """
WITH RECURSIVE h AS (
    SELECT parent_id, fork_version, version FROM {threads} WHERE thread_id = %(tid)s
), walk(seq, tokens, body, run) AS (
    SELECT m.seq, m.tokens, m.body, m.tokens::bigint
    FROM h JOIN {messages} m ON m.thread_id = %(tid)s AND m.seq = h.version
    WHERE h.version > h.fork_version AND m.tokens <= %(budget)s
  UNION ALL
    SELECT m.seq, m.tokens, m.body, w.run + m.tokens
    FROM walk w JOIN {messages} m ON m.thread_id = %(tid)s AND m.seq = w.seq - 1
    WHERE m.seq > (SELECT fork_version FROM h) AND w.run + m.tokens <= %(budget)s
)
SELECT h.parent_id, h.fork_version, h.version, w.seq, w.tokens, w.body, w.run
FROM h LEFT JOIN walk w ON true
"""
"""``_WALK`` over the thread's own rows, with the thread's row: one round trip when no fork
ancestor is needed."""

_Row = tuple[str, int, int, bytes]


class PostgresChatMessageStore(ConnectedStore):
    """A thread kept in PostgreSQL, shareable by any number of processes and hosts.

    Args:
        dsn: a ``postgresql://`` URL or key/value DSN; the store then owns a small connection pool
            (close it with :meth:`aclose` or ``async with``). Give ``pool`` instead to share one
            pool among many threads (recommended for servers); its owner closes it.
        pool: a ``psycopg_pool.AsyncConnectionPool``, ideally opened with
            ``kwargs={"autocommit": True}`` (one round trip per append instead of three).
        thread_id: the thread to open or create; a new id when omitted.
        schema: the PostgreSQL schema holding the tables; created if missing.
        token_counter: counts each message's tokens when written, for bounded reads.
        codec: how records are encoded; e.g. ``EncryptedCodec(master_key)`` to encrypt them.
        connect_timeout: seconds to wait for a connection from a pool made from ``dsn``.

    Serialized state is ``{"thread_id": ..., "schema": ...}``: never the DSN, which may hold a
    password. Restore it through an agent whose ``chat_message_store_factory`` makes stores with
    the right connection.
    """

    kind = "postgres"
    namespace_option = "schema"

    def __init__(
        self,
        *,
        dsn: str | None = None,
        pool: AsyncConnectionPool[Any] | None = None,
        thread_id: str | None = None,
        schema: str = "public",
        token_counter: TokenCounter = estimate_tokens,
        codec: MessageCodec | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        made = store_pool(
            dsn, pool, store="PostgresChatMessageStore", connect_timeout=connect_timeout
        )
        pool = made.pool
        self._where = made.where
        self._shared = SharedResource(pool.close if made.owned else None)
        self._owns_pool = made.owned
        self._shared.acquire()
        self._pool = pool
        self.thread_id = (
            check_thread_id(thread_id, error=ValueError) if thread_id else new_thread_id()
        )
        self.schema = schema
        self._count = token_counter
        self._codec: MessageCodec = codec or JSONCodec()
        self._closed = False
        self._cache = HistoryCache()
        names = {
            "schema": sql.Identifier(schema),
            "threads": sql.Identifier(schema, "threadline_threads"),
            "messages": sql.Identifier(schema, "threadline_messages"),
            "records": sql.Identifier(schema, "threadline_records"),
        }
        queries: tuple[tuple[str, LiteralString], ...] = (
            ("schema", _SCHEMA),
            ("append", _APPEND),
            ("head_read", _HEAD_READ),
            ("range", _RANGE),
            ("segments", _SEGMENTS),
            ("walk", _WALK),
            ("head_walk", _HEAD_WALK),
        )
        self._q = {name: sql.SQL(text).format(**names) for name, text in queries}
        self._setup_key = "threadline:" + schema
        self._names = names

    def __repr__(self) -> str:
        return f"PostgresChatMessageStore({self._where!r}, thread_id={self.thread_id!r})"

    def _error(self, exc: BaseException, thread_id: str | None = None) -> StoreError:
        return StoreError(
            f"PostgreSQL at {self._where} failed on thread {thread_id or self.thread_id!r}: {exc}"
        )

    async def setup(self) -> None:
        """Create the schema and tables if missing. Safe to call from many processes at once."""
        try:
            await set_up_once(
                self._pool,
                owned=self._owns_pool,
                key=self._setup_key,
                schema=self._q["schema"],
            )
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def _ensure(self) -> None:
        if not is_set_up(self._pool, self._setup_key):
            await self.setup()

    async def _fetch(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        await self._ensure()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(self._q[query], params, binary=True)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _decode(self, rows: Sequence[_Row]) -> list[ChatMessage]:
        decode = self._codec.decode
        return [decode(bytes(body), thread_id=t, record=seq) for t, seq, _, body in rows]

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """Messages oldest first; bounded reads page backwards and decode only what they keep."""
        check_max_tokens(max_tokens)
        if max_tokens is not None:
            return self._decode(await self._read_budget(max_tokens))
        return (await self._read_all()).copy()

    async def view_messages(self) -> MessageView:
        """Every message, oldest first, without copying (see ``ChatMessageStore.view_messages``)."""
        messages = await self._read_all()
        return MessageView((messages, len(messages)))

    async def _read_all(self) -> list[ChatMessage]:
        """The cache's own list after reading what is new: never change it, copy or view it."""
        while True:  # at most twice: the second read is a full one
            start = self._cache.read_from()
            rows = await self._read_after(start)
            merged = self._cache.merge(start, self._decode(rows))
            if merged is not None:
                return merged

    async def _read_after(self, after: int) -> list[_Row]:
        await self._ensure()
        try:
            async with self._pool.connection() as conn:
                return await self._read_rows(conn, self.thread_id, after)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def _read_rows(
        self, conn: psycopg.AsyncConnection[Any], tid: str, after: int
    ) -> list[_Row]:
        """The thread's rows after position ``after``, oldest first, across fork ancestors."""
        cur = await conn.execute(self._q["head_read"], {"tid": tid, "after": after}, binary=True)
        head = await cur.fetchall()
        if not head:
            return []
        rows: list[_Row] = [(tid, seq, tokens, body) for *_, seq, tokens, body in head if seq]
        parent, lo, version = head[0][0], int(head[0][1]), int(head[0][2])
        if parent is not None and after < lo:
            for seg_id, seg_lo, seg_hi in await self._segments(conn, tid):
                if seg_id == tid or seg_hi <= after:
                    continue
                cur = await conn.execute(
                    self._q["range"],
                    {"tid": seg_id, "lo": max(int(seg_lo), after), "hi": seg_hi},
                    binary=True,
                )
                rows.extend(
                    (seg_id, seq, tokens, body) for seq, tokens, body in await cur.fetchall()
                )
        rows.sort(key=lambda row: row[1])
        if len(rows) != max(version - after, 0):
            # Left alone, every later turn would fail its version check (the history read is
            # shorter than the version), or land on positions that are already taken.
            raise corrupt_thread_error(
                tid,
                f"its version says {version} messages, but {len(rows)} of the "
                f"{max(version - after, 0)} expected rows after position {after} are stored",
            )
        return rows

    async def _segments(
        self, conn: psycopg.AsyncConnection[Any], tid: str
    ) -> list[tuple[str, int, int]]:
        """The stretches of history kept under ``tid`` and its fork ancestors, newest first.

        Raises:
            StoreError: the fork parents loop back (corrupt data).
        """
        cur = await conn.execute(self._q["segments"], {"tid": tid})
        segments: list[tuple[str, int, int]] = []
        for seg_id, seg_lo, seg_hi, looped in await cur.fetchall():
            if looped:
                raise corrupt_thread_error(tid, f"its fork parents form a loop at {seg_id!r}")
            segments.append((seg_id, int(seg_lo), int(seg_hi)))
        return segments

    async def _read_budget(self, max_tokens: int) -> list[_Row]:
        await self._ensure()
        tid = self.thread_id
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    self._q["head_walk"], {"tid": tid, "budget": max_tokens}, binary=True
                )
                rows = await cur.fetchall()
                if not rows:
                    return []  # no such thread
                parent, lo, hi = rows[0][0], int(rows[0][1]), int(rows[0][2])
                walked = [(seq, tokens, body, run) for *_, seq, tokens, body, run in rows if seq]
                kept: list[_Row] = [(tid, seq, tokens, body) for seq, tokens, body, _ in walked]
                left = max_tokens - (max(int(w[3]) for w in walked) if walked else 0)
                if len(walked) < hi - lo or parent is None:  # budget or history exhausted
                    kept.sort(key=lambda row: row[1])
                    return kept
                for seg_id, seg_lo, seg_hi in await self._segments(conn, tid):
                    if seg_id == tid:
                        continue
                    cur = await conn.execute(
                        self._q["walk"],
                        {"tid": seg_id, "lo": seg_lo, "hi": seg_hi, "budget": left},
                        binary=True,
                    )
                    walked = await cur.fetchall()
                    kept.extend((seg_id, seq, tokens, body) for seq, tokens, body, _ in walked)
                    if len(walked) < seg_hi - seg_lo:  # the budget ran out in this stretch
                        break
                    left -= max(int(w[3]) for w in walked) if walked else 0
                else:
                    if len(kept) != hi:  # within budget, yet not the whole history: rows missing
                        raise corrupt_thread_error(
                            tid, f"its version says {hi} messages, but {len(kept)} are stored"
                        )
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        kept.sort(key=lambda row: row[1])
        return kept

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append all of ``messages`` or none in one statement that also checks the version."""
        await self._ensure()
        try:
            async with self._pool.connection() as conn:
                version = await self._append_on(conn, messages, expected_version)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        self._cache.appended(messages, version)
        return version

    async def _append_on(
        self,
        conn: psycopg.AsyncConnection[Any],
        messages: Sequence[ChatMessage],
        expected_version: int | None,
    ) -> int:
        """The append, on ``conn`` (alone, or inside a batch's transaction); the new version."""
        tid = self.thread_id
        encode = self._codec.encode
        params = {
            "tid": tid,
            "n": len(messages),
            "exp": expected_version,
            "mids": [m.message_id for m in messages],
            "toks": [self._count(m) for m in messages],
            "bodies": [encode(m, thread_id=tid) for m in messages],
        }
        threads = self._names["threads"]
        try:
            for _ in range(2):
                cur = await conn.execute(self._q["append"], params)
                row = await cur.fetchone()
                if row is not None:
                    if not conn.autocommit:
                        await conn.commit()
                    return int(row[0])
                # No row updated: the thread is new, or its version differs.
                cur = await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (thread_id) VALUES (%s) ON CONFLICT DO NOTHING "
                        "RETURNING version"
                    ).format(threads),
                    (tid,),
                )
                created = await cur.fetchone()
                if not conn.autocommit:
                    await conn.commit()
                if created is None:
                    cur = await conn.execute(
                        sql.SQL("SELECT version FROM {} WHERE thread_id = %s").format(threads),
                        (tid,),
                    )
                    current = await cur.fetchone()
                    if not conn.autocommit:
                        await conn.commit()
                    actual = 0 if current is None else int(current[0])
                    if expected_version is not None and actual != expected_version:
                        raise ConcurrentThreadUpdateError(
                            tid, expected_version=expected_version, actual_version=actual
                        )
        except psycopg.errors.UniqueViolation as exc:  # a row already holds a position past it
            raise corrupt_thread_error(
                tid, f"messages are stored past its version ({exc.diag.message_detail})"
            ) from exc
        raise StoreError(f"thread {tid!r} could not be created in PostgreSQL at {self._where}")

    async def fork(self, *, at: int | None = None) -> PostgresChatMessageStore:
        """A new thread row pointing at this one and its first ``at`` rows (all): none copied.

        Raises:
            ValueError: ``at`` is negative or past the thread's length.
        """
        if at is not None:
            check_fork_at(at, at, repr(self.thread_id))  # type and sign; the length below
        child = new_thread_id()
        await self._ensure()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await self._fork_on(conn, child, at)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        return self._sibling(child)

    async def _fork_on(self, conn: psycopg.AsyncConnection[Any], child: str, at: int | None) -> int:
        """Make ``child`` a fork of this thread, in the caller's transaction; its version.

        Raises:
            ValueError: ``at`` is not a position of this thread.
            ConcurrentThreadUpdateError: ``child`` exists already.
        """
        threads = self._names["threads"]
        await conn.execute(
            sql.SQL("INSERT INTO {} (thread_id) VALUES (%s) ON CONFLICT DO NOTHING").format(
                threads
            ),
            (self.thread_id,),
        )
        cur = await conn.execute(
            sql.SQL("SELECT version FROM {} WHERE thread_id = %s FOR SHARE").format(threads),
            (self.thread_id,),
        )
        row = await cur.fetchone()
        point = check_fork_at(at, int(row[0]) if row else 0, repr(self.thread_id))
        cur = await conn.execute(
            sql.SQL(
                "INSERT INTO {} (thread_id, parent_id, fork_version, version) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING version"
            ).format(threads),
            (child, self.thread_id, point, point),
        )
        if await cur.fetchone() is None:
            cur = await conn.execute(
                sql.SQL("SELECT version FROM {} WHERE thread_id = %s").format(threads), (child,)
            )
            existing = await cur.fetchone()
            actual = int(existing[0]) if existing else 0
            raise ConcurrentThreadUpdateError(child, expected_version=0, actual_version=actual)
        return point

    async def delete(self) -> None:
        """Delete the thread in one transaction; forks first get a copy of what they share."""
        await self._ensure()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await self._delete_on(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        self._cache.reset()

    async def _delete_on(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The delete, in the caller's transaction."""
        tid = self.thread_id
        threads, messages = self._names["threads"], self._names["messages"]
        await conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE thread_id = %s FOR UPDATE").format(threads), (tid,)
        )
        cur = await conn.execute(
            # A thread naming itself as parent (corrupt) is not its own fork to rescue.
            sql.SQL(
                "SELECT thread_id, fork_version FROM {} WHERE parent_id = %s AND thread_id <> %s"
            ).format(threads),
            (tid, tid),
        )
        children = await cur.fetchall()
        if children:
            prefix = await self._read_rows(conn, tid, 0)
            decode = self._codec.decode
            for child, fork_version in children:
                copied = [
                    (
                        child,
                        seq,
                        decode(bytes(body), thread_id=seg, record=seq).message_id,
                        tokens,
                        recode(
                            self._codec, bytes(body), from_thread=seg, to_thread=child, record=seq
                        ),
                    )
                    for seg, seq, tokens, body in prefix
                    if seq <= fork_version
                ]
                async with conn.cursor() as c:
                    await c.executemany(
                        sql.SQL(
                            "INSERT INTO {} (thread_id, seq, message_id, tokens, body) "
                            "VALUES (%s, %s, %s, %s, %s)"
                        ).format(messages),
                        copied,
                    )
                await conn.execute(
                    sql.SQL(
                        "UPDATE {} SET parent_id = NULL, fork_version = 0 WHERE thread_id = %s"
                    ).format(threads),
                    (child,),
                )
        await conn.execute(sql.SQL("DELETE FROM {} WHERE thread_id = %s").format(messages), (tid,))
        await conn.execute(sql.SQL("DELETE FROM {} WHERE thread_id = %s").format(threads), (tid,))
