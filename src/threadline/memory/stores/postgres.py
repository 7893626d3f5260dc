"""``PostgresMemoryStore``: long-term memory shared by many processes and hosts through PostgreSQL.

Layout (in a schema of the caller's choice, created on first use): ``threadline_memories`` holds
one row per record, with a generated ``tsvector`` column under a GIN index for full text, and the
vector (when there is an embedder) as float32 ``bytea``; ``threadline_memory_meta`` remembers
which embedder made the vectors. Ranking is the SQLite store's: full-text candidates (``ts_rank``
over an OR of the query's content words) and the scope's recent records are scored by cosine in
Python, then fused by weighted reciprocal rank (see ``_ranking``). ``pgvector`` is not used: it
is often not installed (it is not on the machine this was built on), and exact scoring of a
bounded candidate set needs no extension; an approximate index would matter only for users with
far more memories than the candidate pools cover.

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString, cast

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from threadline._postgres import set_up_once, store_pool
from threadline.exceptions import StoreError, UsageError
from threadline.memory._notice import PASS_EMBEDDER, warn_lexical_only
from threadline.memory._temporal import time_window
from threadline.memory.records import (
    ForgetResult,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
    as_utc,
)
from threadline.memory.store import Embedder
from threadline.memory.stores._common import (
    DEFAULT_MAX_TEXT_CHARS,
    EMBED_MISSING_BATCH,
    NEAR_COPY_SIMILARITY,
    EmbedProgress,
    check_forget_user,
    check_ids,
    check_list_limit,
    check_query,
    check_records,
    check_scope,
    check_valid_to,
    embed_missing_rows,
    embed_records,
    embed_texts,
    embedder_for_missing,
    owner_token,
    record_filter,
    scope_filter,
    unexpired,
    vector_order,
)
from threadline.memory.stores._ranking import Fusion, best_hits, fts_terms, shortlist
from threadline.threads.stores.retention import cutoff_of

__all__ = ["PostgresMemoryStore"]

_FORGET_LOCK = "threadline:forget:"

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {forgotten} (owner text PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS {memories} (
    id          text PRIMARY KEY,
    user_id     text NOT NULL,
    agent_id    text,
    app_id      text,
    kind        text NOT NULL,
    text        text NOT NULL,
    thread_id   text,
    message_ids text[] NOT NULL,
    occurred_at timestamptz,
    recorded_at timestamptz NOT NULL,
    valid_from  timestamptz,
    valid_to    timestamptz,
    metadata    jsonb NOT NULL,
    vector      bytea,
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
    expires_at  timestamptz
);
ALTER TABLE {memories} ADD COLUMN IF NOT EXISTS expires_at timestamptz;
CREATE INDEX IF NOT EXISTS threadline_memories_expiry ON {memories} (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS threadline_memories_tsv ON {memories} USING GIN (tsv);
CREATE INDEX IF NOT EXISTS threadline_memories_user_when
    ON {memories} (user_id, (coalesce(occurred_at, recorded_at)));
CREATE INDEX IF NOT EXISTS threadline_memories_user_thread ON {memories} (user_id, thread_id);
"""

_COLUMNS = (
    "id, user_id, agent_id, app_id, kind, text, thread_id, message_ids, occurred_at, "
    "recorded_at, valid_from, valid_to, metadata, expires_at"
)

_UPSERT = f"""
INSERT INTO {{memories}} AS m ({_COLUMNS}, vector)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    agent_id = excluded.agent_id, app_id = excluded.app_id, kind = excluded.kind,
    text = excluded.text, thread_id = excluded.thread_id, message_ids = excluded.message_ids,
    occurred_at = excluded.occurred_at, recorded_at = excluded.recorded_at,
    valid_from = excluded.valid_from, valid_to = excluded.valid_to, metadata = excluded.metadata,
    expires_at = excluded.expires_at, vector = excluded.vector
WHERE m.user_id = excluded.user_id
"""


def _record(row: Sequence[Any]) -> MemoryRecord:
    (mid, user, agent, app, kind, text, thread, mids, occurred, recorded, vfrom, vto, meta, exp) = (
        row
    )
    return MemoryRecord(
        id=mid,
        kind=kind,
        text=text,
        scope=MemoryScope(user_id=user, agent_id=agent, app_id=app),
        thread_id=thread,
        message_ids=tuple(mids),
        occurred_at=None if occurred is None else as_utc(occurred),
        recorded_at=as_utc(recorded),
        valid_from=None if vfrom is None else as_utc(vfrom),
        valid_to=None if vto is None else as_utc(vto),
        metadata=meta,
        expires_at=None if exp is None else as_utc(exp),
    )


class PostgresMemoryStore:
    """Long-term memories in PostgreSQL: full text (tsvector, GIN), optional vectors, fusion.

    Args:
        dsn: a ``postgresql://`` URL or key/value DSN; the store then owns a small pool (close it
            with :meth:`aclose`). Give ``pool`` instead to share one (its owner closes it).
        pool: a ``psycopg_pool.AsyncConnectionPool`` opened with ``kwargs={"autocommit": True}``.
        schema: the PostgreSQL schema holding the tables; created if missing.
        embedder, fusion, max_text_chars, lexical_candidates, recent_candidates,
            near_copy_similarity: as for
            :class:`~threadline.memory.SQLiteMemoryStore`.
        connect_timeout: seconds to wait for a connection from a pool made from ``dsn``.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        schema: str = "public",
        embedder: Embedder | None = None,
        fusion: Fusion | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        lexical_candidates: int = 200,
        recent_candidates: int = 1000,
        near_copy_similarity: float = NEAR_COPY_SIMILARITY,
        connect_timeout: float = 10.0,
    ) -> None:
        self.near_copy_similarity = near_copy_similarity
        made = store_pool(dsn, pool, store="PostgresMemoryStore", connect_timeout=connect_timeout)
        self._pool = made.pool
        self._owns_pool = made.owned
        self._where = made.where
        self.schema = schema
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        self.max_text_chars = max_text_chars
        self.lexical_candidates = lexical_candidates
        self.recent_candidates = recent_candidates
        self._checked_embedder = False
        names = {
            "schema": sql.Identifier(schema),
            "memories": sql.Identifier(schema, "threadline_memories"),
            "meta": sql.Identifier(schema, "threadline_memory_meta"),
            "forgotten": sql.Identifier(schema, "threadline_memory_forgotten"),
        }
        self._names = names
        self._schema_sql = sql.SQL(_SCHEMA).format(**names)
        self._upsert = sql.SQL(_UPSERT).format(**names)
        if embedder is None:
            warn_lexical_only("PostgresMemoryStore was made without an embedder", PASS_EMBEDDER)

    def __repr__(self) -> str:
        return f"PostgresMemoryStore({self._where!r}, schema={self.schema!r})"

    async def __aenter__(self) -> PostgresMemoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _sql(self, text: str) -> sql.Composed:
        # The text is only ever fixed SQL, column names and placeholders assembled in this
        # package (scope filters included); values always travel as parameters.
        return sql.SQL(cast("LiteralString", text)).format(**self._names)

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"PostgreSQL memory store at {self._where} failed: {exc}")

    async def setup(self) -> None:
        """Create the schema and tables if missing. Safe to call from many processes at once."""
        try:
            await set_up_once(
                self._pool,
                owned=self._owns_pool,
                key="threadline:mem:" + self.schema,
                schema=self._schema_sql,
            )
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def _rows(self, query: sql.Composable, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        await self.setup()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(query, params)
                return await cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def _count(self, query: sql.Composable, params: Sequence[Any]) -> int:
        await self.setup()
        try:
            async with self._pool.connection() as conn:
                return (await conn.execute(query, params)).rowcount
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def _check_embedder(self) -> None:
        if self._checked_embedder or self.embedder is None:
            return
        label = f"{self.embedder.name} ({self.embedder.dimension} dimensions)"
        await self._rows(
            self._sql("INSERT INTO {meta} VALUES ('embedder', %s) ON CONFLICT DO NOTHING"),
            [label],
        )
        rows = await self._rows(self._sql("SELECT value FROM {meta} WHERE key = 'embedder'"), [])
        if rows and rows[0][0] != label:
            raise UsageError(
                f"memory schema {self.schema!r} holds vectors of embedder {rows[0][0]}, not "
                f"{label}: open it with the embedder it was made with, or use another schema"
            )
        self._checked_embedder = True

    async def add(self, records: Sequence[MemoryRecord]) -> None:
        """Store records in one transaction; an existing id of the same user is replaced.

        Raises:
            UsageError: a record is invalid or its id belongs to another user; nothing stored.
        """
        batch = check_records(records, self.max_text_chars)
        if not batch:
            return
        vectors: list[bytes | None] = [None] * len(batch)
        if self.embedder is not None:
            await self._check_embedder()
            vectors = list(await embed_records(self.embedder, batch))
        await self.setup()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                marks = await self._forget_marks(conn, batch)
                for r, vector in zip(batch, vectors, strict=True):
                    mark = marks.get(r.scope.user_id)
                    if r.derived_at is not None and mark is not None and r.derived_at < mark:
                        continue  # learnt before its user was forgotten: forget wins
                    cur = await conn.execute(
                        self._upsert,
                        (
                            r.id,
                            r.scope.user_id,
                            r.scope.agent_id,
                            r.scope.app_id,
                            r.kind,
                            r.text,
                            r.thread_id,
                            list(r.message_ids),
                            r.occurred_at and as_utc(r.occurred_at),
                            as_utc(r.recorded_at),
                            r.valid_from and as_utc(r.valid_from),
                            r.valid_to and as_utc(r.valid_to),
                            Jsonb(dict(r.metadata)),
                            r.expires_at and as_utc(r.expires_at),
                            vector,
                        ),
                    )
                    if cur.rowcount != 1:
                        raise UsageError(
                            f"memory id {r.id!r} is already used by another user; "
                            "give the record a new id (new_memory_id())"
                        )
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def embed_missing(self, *, progress: EmbedProgress | None = None) -> int:
        """Give a vector to every record stored without one; returns how many were embedded.

        As ``SQLiteMemoryStore.embed_missing``: for records written while no embedder was
        configured; the vector is made from the stored text; each batch commits on its own, so
        stopping and running again is safe, and a record given a vector meanwhile is left alone.

        Raises:
            UsageError: the store has no embedder, or the schema holds another embedder's vectors.
        """
        embedder = embedder_for_missing(self, self.embedder)
        await self._check_embedder()
        counted = await self._rows(
            self._sql("SELECT count(*) FROM {memories} WHERE vector IS NULL"), []
        )

        async def read(after: str) -> list[tuple[Any, ...]]:
            return await self._rows(
                self._sql(
                    "SELECT id, text FROM {memories} WHERE vector IS NULL AND id > %s "
                    "ORDER BY id LIMIT %s"
                ),
                [after, EMBED_MISSING_BATCH],
            )

        async def write(updates: list[tuple[bytes, str]]) -> None:
            query = self._sql("UPDATE {memories} SET vector = %s WHERE id = %s AND vector IS NULL")
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    async with conn.cursor() as cur:
                        await cur.executemany(query, updates)
            except psycopg.Error as exc:
                raise self._error(exc) from exc

        return await embed_missing_rows(
            embedder,
            total=int(counted[0][0]),
            start="",
            read=read,
            write=write,
            progress=progress,
        )

    async def _forget_marks(
        self, conn: psycopg.AsyncConnection[Any], batch: Sequence[MemoryRecord]
    ) -> dict[str, datetime]:
        """When each user of ``batch`` with derived records was last forgotten.

        Takes each such user's forget lock shared, so a ``forget`` running at the same time
        either deletes this transaction's rows or is seen by it, never neither.
        """
        users = sorted({r.scope.user_id for r in batch if r.derived_at is not None})
        marks: dict[str, datetime] = {}
        for user in users:
            await conn.execute(
                "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))",
                [_FORGET_LOCK + owner_token(user)],
            )
            rows = await (
                await conn.execute(
                    self._sql("SELECT at FROM {forgotten} WHERE owner = %s"), [owner_token(user)]
                )
            ).fetchall()
            if rows:
                marks[user] = rows[0][0]
        return marks

    def _filters(self, scope: MemoryScope, **options: Any) -> tuple[str, list[Any]]:
        return record_filter(scope, mark="%s", prefix="m.", time=as_utc, **options)

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
        """The records of ``scope`` most relevant to ``query``, best first."""
        query = check_query(query, limit)
        where, params = self._filters(
            scope,
            kinds=kinds,
            since=since,
            until=until,
            exclude_thread_id=exclude_thread_id,
            include_superseded=include_superseded,
        )
        window = time_window(query)
        when: dict[str, datetime | None] = {}
        lexical: list[tuple[str, float]] = []
        terms = fts_terms(query)
        moment = "coalesce(m.occurred_at, m.recorded_at)"
        if terms:
            tsquery = " | ".join(terms)
            rows = await self._rows(
                self._sql(
                    f"SELECT m.id, {moment}, ts_rank(m.tsv, q, 1) AS relevance "
                    "FROM {memories} m, to_tsquery('english'::regconfig, %s) q "
                    f"WHERE m.tsv @@ q AND {where} ORDER BY relevance DESC, m.id "
                    "LIMIT %s"
                ),
                [tsquery, *params, self.lexical_candidates],
            )
            for mid, at, relevance in rows:
                lexical.append((mid, float(relevance)))
                when[mid] = at
        if window is not None:
            rows = await self._rows(
                self._sql(
                    f"SELECT m.id, {moment} FROM {{memories}} m WHERE {where} "
                    f"AND {moment} >= %s AND {moment} < %s LIMIT 500"
                ),
                [*params, window.start, window.end],
            )
            when.update((mid, at) for mid, at in rows)
        vector: list[tuple[str, float]] = []
        pool: dict[str, bytes] = {}
        if self.embedder is not None:
            await self._check_embedder()
            query_vector = (await embed_texts(self.embedder, [query]))[0]
            rows = await self._rows(
                self._sql(
                    f"SELECT m.id, {moment}, m.vector FROM {{memories}} m WHERE {where} "
                    f"AND m.vector IS NOT NULL ORDER BY {moment} DESC LIMIT %s"
                ),
                [*params, self.recent_candidates],
            )
            pool.update((mid, bytes(blob)) for mid, _, blob in rows)
            for mid, at, _ in rows:
                when.setdefault(mid, at)
            missing = [mid for mid in when if mid not in pool]
            if missing:
                found = await self._rows(
                    self._sql(
                        "SELECT id, vector FROM {memories} WHERE vector IS NOT NULL "
                        "AND id = ANY(%s)"
                    ),
                    [missing],
                )
                pool.update((mid, bytes(blob)) for mid, blob in found)
            vector = vector_order(pool, query_vector, self.embedder.dimension)
        top = shortlist(
            lexical=lexical,
            vector=vector,
            when=when,
            window=window,
            fusion=self.fusion,
            pool=pool,
            dimension=0 if self.embedder is None else self.embedder.dimension,
            near_copy_similarity=self.near_copy_similarity,
            limit=limit,
        )
        if not top:
            return []
        rows = await self._rows(
            self._sql(f"SELECT {_COLUMNS} FROM {{memories}} WHERE id = ANY(%s)"),
            [[mid for mid, _ in top]],
        )
        records = {row[0]: _record(row) for row in rows}
        return best_hits(top, records, limit, self.fusion, terms)

    async def get(self, memory_id: str, *, scope: MemoryScope) -> MemoryRecord | None:
        """One record, or ``None`` if it does not exist in this scope."""
        where, params = scope_filter(check_scope(scope), "%s")
        rows = await self._rows(
            self._sql(
                f"SELECT {_COLUMNS} FROM {{memories}} WHERE id = %s AND {where} "
                f"AND {unexpired('', '%s')}"
            ),
            [memory_id, *params, datetime.now(UTC)],
        )
        return _record(rows[0]) if rows else None

    async def list(
        self,
        *,
        scope: MemoryScope,
        kinds: Sequence[MemoryKind] | None = None,
        thread_id: str | None = None,
        include_superseded: bool = False,
        limit: int | None = None,
    ) -> list[MemoryRecord]:
        """Records of ``scope``, newest recorded first."""
        where, params = self._filters(
            scope, kinds=kinds, thread_id=thread_id, include_superseded=include_superseded
        )
        check_list_limit(limit)
        columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        rows = await self._rows(
            self._sql(
                f"SELECT {columns} FROM {{memories}} m WHERE {where} "
                "ORDER BY m.recorded_at DESC, m.id DESC LIMIT %s"
            ),
            [*params, limit],
        )
        return [_record(row) for row in rows]

    async def delete(self, memory_ids: Sequence[str], *, scope: MemoryScope) -> int:
        """Delete records of ``scope`` (index entries and vectors go with the row)."""
        ids = check_ids(memory_ids)
        where, params = scope_filter(check_scope(scope), "%s")
        if not ids:
            return 0
        return await self._count(
            self._sql(f"DELETE FROM {{memories}} WHERE id = ANY(%s) AND {where}"),
            [ids, *params],
        )

    async def supersede(self, memory_id: str, *, scope: MemoryScope, valid_to: datetime) -> bool:
        """Mark a record no longer valid (kept for audit); False if not found in ``scope``."""
        where, params = scope_filter(check_scope(scope), "%s")
        moment = as_utc(check_valid_to(valid_to))
        count = await self._count(
            self._sql(f"UPDATE {{memories}} SET valid_to = %s WHERE id = %s AND {where}"),
            [moment, memory_id, *params],
        )
        return count == 1

    async def prune(
        self, *, older_than: timedelta | datetime, dry_run: bool = False
    ) -> MemoryPruneResult:
        """Delete every user's expired records, and records superseded before ``older_than``.

        Expired records are already never recalled; this frees their rows (autovacuum makes
        the space reusable). Superseded records are kept for audit until they are older than
        the age. An operator's task, so it spans all users; safe from several processes.

        Raises:
            UsageError: the age is zero or negative, or the datetime naive or in the future.
        """
        cutoff = datetime.fromtimestamp(cutoff_of(older_than), UTC)
        now = datetime.now(UTC)
        gone = "coalesce(expires_at <= %s, false) AS gone"
        pick = "expires_at <= %s OR valid_to < %s"
        if dry_run:
            chosen = f"SELECT {gone} FROM {{memories}} WHERE {pick}"
        else:
            chosen = f"DELETE FROM {{memories}} WHERE {pick} RETURNING {gone}"
        # One statement: its counts are what it deleted, even with another prune running.
        rows = await self._rows(
            self._sql(
                f"WITH x AS ({chosen}) "
                "SELECT count(*) FILTER (WHERE gone), count(*) FILTER (WHERE NOT gone) FROM x"
            ),
            [now, now, cutoff] if dry_run else [now, cutoff, now],
        )
        expired, superseded = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        return MemoryPruneResult(
            expired=expired, superseded=superseded, cutoff=cutoff, dry_run=dry_run
        )

    async def forget(self, *, user_id: str) -> ForgetResult:
        """Delete every record of ``user_id``; its tsvector and vector live in the same row.

        No query can reach the rows once this returns, but PostgreSQL does not erase them:
        the dead rows, their index entries (the GIN text index holds the user's words) and
        TOASTed text stay in the table's files until they are overwritten. Plain ``VACUUM``
        (and autovacuum) only marks that space reusable; it does not remove the words.
        ``VACUUM FULL`` on the table (or ``pg_repack``) rewrites the table and its indexes into
        new files without them. Copies also stay in PostgreSQL's write-ahead log until its
        segments are recycled, and in any base backup, WAL archive or replica, which only
        their own retention removes. So the result is never ``purged``; its ``remaining``
        names the table to rewrite.
        """
        user_id = check_forget_user(user_id)
        owner = owner_token(user_id)
        await self.setup()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                # Work still running for this user (an extraction) must not bring anything back.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_FORGET_LOCK + owner]
                )
                await conn.execute(
                    self._sql(
                        "INSERT INTO {forgotten} VALUES (%s, %s) "
                        "ON CONFLICT (owner) DO UPDATE SET at = excluded.at"
                    ),
                    [owner, datetime.now(UTC)],
                )
                cur = await conn.execute(
                    self._sql("DELETE FROM {memories} WHERE user_id = %s"), [user_id]
                )
                count = cur.rowcount
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        table = f"{self.schema}.threadline_memories"
        return ForgetResult(
            records=count,
            purged=False,
            remaining=(
                f"PostgreSQL keeps the deleted rows' bytes in the files of {table} and its "
                f"indexes until `VACUUM FULL {table}` (or pg_repack) rewrites them (plain "
                "VACUUM does not), and in its write-ahead log, archives and backups until "
                "their retention ends"
            ),
        )

    async def aclose(self) -> None:
        """Close the pool if this store made it."""
        if self._owns_pool and not self._pool.closed:
            await self._pool.close()
