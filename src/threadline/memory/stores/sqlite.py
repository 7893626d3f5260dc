"""``SQLiteMemoryStore``: long-term memory in one local file, with nothing to install or run.

Layout: ``memories`` holds one row per record (scope columns, times as epoch seconds, the vector
as a float32 blob when there is an embedder); ``memories_fts`` is an FTS5 index over the same rows
(external content, kept in step by triggers, so the text is stored once). Every row is also
indexed under an *owner* token derived from its user, and every full-text query requires it: the
index itself returns only that user's matches, which keeps searches fast when many users share a
file and makes the user filter part of the query rather than an afterthought. BM25's statistics
(how rare a word is) are FTS5's, over the whole file, or with ``per_user_statistics=True`` the
user's own, so that in a file shared by many users nobody's records reorder anyone else's results
(``_sqlite_bm25`` says what that costs).

Why numpy over candidate sets rather than ``sqlite-vec``: it needs nothing installed beyond numpy
(which the ``memory`` extra brings anyway), it is exact (no approximate index to tune or rebuild),
and it is fast enough: a search embeds the query, then scores at most a few thousand candidates
(the BM25 top hits, the scope's most recent records, and records in the period the query names),
a matrix-vector product of well under a millisecond; reading their blobs dominates, a few
milliseconds at 100,000 stored turns. The limit is that an old memory sharing no word with the
query and outside the recent pool is found by neither list; for conversational memory, where old
relevant turns almost always share a content word with the question, that trade is worth it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from threadline._sqlite import SQLiteWorker, immediate_transaction
from threadline._utils import data_home
from threadline.exceptions import UsageError
from threadline.memory._notice import PASS_EMBEDDER, warn_lexical_only
from threadline.memory._temporal import TimeWindow, time_window
from threadline.memory.records import (
    ForgetResult,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
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
    decode_metadata,
    embed_missing_rows,
    embed_records,
    embed_texts,
    embedder_for_missing,
    encode_metadata,
    from_epoch,
    owner_token,
    record_filter,
    scope_filter,
    to_epoch,
    unexpired,
    vector_order,
)
from threadline.memory.stores._ranking import Fusion, best_hits, fts_terms, shortlist
from threadline.memory.stores._sqlite_bm25 import (
    OWNER_STATS_SCHEMA,
    count_owner_stats,
    file_bm25,
    owner_bm25,
)
from threadline.threads.stores.retention import cutoff_of

__all__ = ["SQLiteMemoryStore"]

_PURGE_WAIT_MS = 2_000
"""How long ``forget`` waits for other connections' reads to end before the write-ahead log can
be emptied: a search takes milliseconds, so a reader still there after two seconds holds a long
transaction (a backup, a shell) that waiting longer would not see end either."""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS memory_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memory_forgotten (owner TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    rid         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    agent_id    TEXT,
    app_id      TEXT,
    owner       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    thread_id   TEXT,
    message_ids TEXT NOT NULL,
    occurred_at REAL,
    recorded_at REAL NOT NULL,
    valid_from  REAL,
    valid_to    REAL,
    metadata    TEXT NOT NULL,
    vector      BLOB,
    expires_at  REAL
);
CREATE INDEX IF NOT EXISTS memories_user_when
    ON memories (user_id, coalesce(occurred_at, recorded_at));
CREATE INDEX IF NOT EXISTS memories_user_thread ON memories (user_id, thread_id);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    text, owner, content='memories', content_rowid='rid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, owner) VALUES (new.rid, new.text, new.owner);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, owner)
    VALUES ('delete', old.rid, old.text, old.owner);
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF text, owner ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, owner)
    VALUES ('delete', old.rid, old.text, old.owner);
    INSERT INTO memories_fts (rowid, text, owner) VALUES (new.rid, new.text, new.owner);
END;
"""
    + OWNER_STATS_SCHEMA
)

_COLUMNS = (
    "id, user_id, agent_id, app_id, kind, text, thread_id, message_ids, occurred_at, "
    "recorded_at, valid_from, valid_to, metadata, expires_at"
)

_UPSERT = f"""
INSERT INTO memories ({_COLUMNS}, owner, vector)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    agent_id = excluded.agent_id, app_id = excluded.app_id, kind = excluded.kind,
    text = excluded.text, thread_id = excluded.thread_id, message_ids = excluded.message_ids,
    occurred_at = excluded.occurred_at, recorded_at = excluded.recorded_at,
    valid_from = excluded.valid_from, valid_to = excluded.valid_to, metadata = excluded.metadata,
    expires_at = excluded.expires_at, vector = excluded.vector
WHERE memories.user_id = excluded.user_id
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
        message_ids=tuple(json.loads(mids)),
        occurred_at=from_epoch(occurred),
        recorded_at=from_epoch(recorded),  # type: ignore[arg-type]  # recorded_at is NOT NULL
        valid_from=from_epoch(vfrom),
        valid_to=from_epoch(vto),
        metadata=decode_metadata(meta),
        expires_at=from_epoch(exp),
    )


class SQLiteMemoryStore:
    """Long-term memories in a SQLite file: FTS5 (BM25), optional vectors, fused ranking.

    Args:
        path: the file (created with its folder); default ``memory.sqlite3`` under
            ``$THREADLINE_HOME`` (or the per-user data directory), ``":memory:"`` for a private
            in-process store.
        embedder: makes vectors for semantic search; without one, search is lexical (BM25)
            only, and a warning says so once. One file keeps the vectors of one embedder.
        fusion: the weights of the fused ranking.
        max_text_chars: the longest text a record may have.
        lexical_candidates: how many BM25 hits enter the fusion.
        recent_candidates: how many of the scope's newest records are scored by vector too.
        near_copy_similarity: a hit whose vector is at least this close (cosine) to a better
            hit's has its score halved, so a line repeated across sessions cannot fill every
            slot; 1.0 turns this off.
        per_user_statistics: rank full-text matches by BM25 computed from the searching user's
            records only, so what other users store never changes the order of a user's
            results (for a file shared by many users, as a server's; slower, see
            ``_sqlite_bm25``). Off: FTS5's statistics over the whole file.

    SQL runs on a worker thread that owns the connection, so the event loop never waits on disk.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        fusion: Fusion | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        lexical_candidates: int = 200,
        recent_candidates: int = 1000,
        near_copy_similarity: float = NEAR_COPY_SIMILARITY,
        per_user_statistics: bool = False,
    ) -> None:
        self.near_copy_similarity = near_copy_similarity
        self.per_user_statistics = per_user_statistics
        self.path = str(data_home() / "memory.sqlite3") if path is None else str(path)
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        self.max_text_chars = max_text_chars
        self.lexical_candidates = lexical_candidates
        self.recent_candidates = recent_candidates
        self._worker = SQLiteWorker(
            self.path,
            schema=_SCHEMA,
            thread_name="threadline-memory",
            describe="SQLite memory store",
            migrate=self._setup_connection,
        )
        self._checked_embedder = False
        if embedder is None:
            warn_lexical_only("SQLiteMemoryStore was made without an embedder", PASS_EMBEDDER)

    def __repr__(self) -> str:
        name = None if self.embedder is None else self.embedder.name
        return f"SQLiteMemoryStore(path={self.path!r}, embedder={name!r})"

    async def __aenter__(self) -> SQLiteMemoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @staticmethod
    def _setup_connection(conn: sqlite3.Connection) -> None:
        # Freed pages are zeroed, so forgotten memories do not linger in the file's free space.
        conn.execute("PRAGMA secure_delete = ON")
        with immediate_transaction(conn):
            columns = {row[1] for row in conn.execute("PRAGMA table_info(memories)")}
            if "expires_at" not in columns:  # a file written before records could expire
                conn.execute("ALTER TABLE memories ADD COLUMN expires_at REAL")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS memories_expiry ON memories (expires_at) "
                "WHERE expires_at IS NOT NULL"
            )
            count_owner_stats(conn)

    async def _check_embedder(self) -> None:
        if self._checked_embedder or self.embedder is None:
            return
        label = f"{self.embedder.name} ({self.embedder.dimension} dimensions)"

        def check(conn: sqlite3.Connection) -> str | None:
            with immediate_transaction(conn):
                row = conn.execute(
                    "SELECT value FROM memory_meta WHERE key = 'embedder'"
                ).fetchone()
                if row is None:
                    conn.execute("INSERT INTO memory_meta VALUES ('embedder', ?)", (label,))
                    return None
                return str(row[0])

        saved = await self._worker.run(check)
        if saved is not None and saved != label:
            raise UsageError(
                f"memory file {self.path!r} holds vectors of embedder {saved}, not {label}: "
                "open it with the embedder it was made with, or use another file"
            )
        self._checked_embedder = True

    async def add(self, records: Sequence[MemoryRecord]) -> None:
        """Store records; an existing id of the same user is replaced (re-importing is safe).

        A record derived before its user was last forgotten (``derived_at``) is dropped.

        Raises:
            UsageError: a record is invalid (empty, too long, not valid Unicode) or its id
                belongs to another user; nothing of the batch is stored.
        """
        batch = check_records(records, self.max_text_chars)
        if not batch:
            return
        vectors: list[bytes | None] = [None] * len(batch)
        if self.embedder is not None:
            await self._check_embedder()
            vectors = list(await embed_records(self.embedder, batch))
        rows = [
            (
                r.id,
                r.scope.user_id,
                r.scope.agent_id,
                r.scope.app_id,
                r.kind,
                r.text,
                r.thread_id,
                json.dumps(list(r.message_ids)),
                to_epoch(r.occurred_at),
                to_epoch(r.recorded_at),
                to_epoch(r.valid_from),
                to_epoch(r.valid_to),
                encode_metadata(r),
                to_epoch(r.expires_at),
                owner_token(r.scope.user_id),
                vector,
            )
            for r, vector in zip(batch, vectors, strict=True)
        ]

        derived = [to_epoch(r.derived_at) for r in batch]

        def write(conn: sqlite3.Connection) -> None:
            with immediate_transaction(conn):
                owners = sorted({row[14] for row, at in zip(rows, derived, strict=True) if at})
                marks: dict[str, float] = dict(
                    conn.execute(
                        "SELECT owner, at FROM memory_forgotten WHERE owner IN "
                        f"({', '.join('?' * len(owners))})",
                        owners,
                    ).fetchall()
                    if owners
                    else []
                )
                for row, at in zip(rows, derived, strict=True):
                    mark = marks.get(row[14])
                    if at is not None and mark is not None and at < mark:
                        continue  # learnt before its user was forgotten: forget wins
                    if conn.execute(_UPSERT, row).rowcount != 1:
                        raise UsageError(
                            f"memory id {row[0]!r} is already used by another user; "
                            "give the record a new id (new_memory_id())"
                        )

        await self._worker.run(write)

    async def embed_missing(self, *, progress: EmbedProgress | None = None) -> int:
        """Give a vector to every record stored without one; returns how many were embedded.

        Records written while no embedder was configured (before the ``memory`` extra was
        installed, or by a store made without one) are found by full-text search only; this
        makes them findable by meaning too. A vector is made from the record's stored text (a
        turn's speaker and date line included), so it can differ slightly from the one ``add``
        would have made from ``embedding_text``. Safe to stop and run again: each batch is
        committed as it is embedded, and a record given a vector meanwhile is left alone.

        Raises:
            UsageError: the store has no embedder, or the file holds another embedder's vectors.
        """
        embedder = embedder_for_missing(self, self.embedder)
        await self._check_embedder()

        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT count(*) FROM memories WHERE vector IS NULL").fetchone()
            return int(row[0])

        async def read(after: int) -> list[tuple[int, str]]:
            def run(conn: sqlite3.Connection) -> list[tuple[int, str]]:
                return conn.execute(
                    "SELECT rid, text FROM memories WHERE vector IS NULL AND rid > ? "
                    "ORDER BY rid LIMIT ?",
                    (after, EMBED_MISSING_BATCH),
                ).fetchall()

            return await self._worker.run(run)

        async def write(updates: list[tuple[bytes, int]]) -> None:
            def run(conn: sqlite3.Connection) -> None:
                with immediate_transaction(conn):
                    conn.executemany(
                        "UPDATE memories SET vector = ? WHERE rid = ? AND vector IS NULL", updates
                    )

            await self._worker.run(run)

        return await embed_missing_rows(
            embedder,
            total=await self._worker.run(count),
            start=0,
            read=read,
            write=write,
            progress=progress,
        )

    def _filters(self, scope: MemoryScope, **options: Any) -> tuple[str, list[Any]]:
        return record_filter(scope, mark="?", prefix="m.", time=to_epoch, **options)

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
        """The records of ``scope`` most relevant to ``query``, best first (see the module doc)."""
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
        query_vector: bytes | None = None
        if self.embedder is not None:
            await self._check_embedder()
            query_vector = (await embed_texts(self.embedder, [query]))[0]
        terms = fts_terms(query)
        owner = owner_token(scope.user_id)
        dimension = 0 if self.embedder is None else self.embedder.dimension

        def run(conn: sqlite3.Connection) -> list[MemoryHit]:
            return self._search(
                conn, owner, where, params, window, query_vector, dimension, limit, terms
            )

        return await self._worker.run(run)

    def _search(
        self,
        conn: sqlite3.Connection,
        owner: str,
        where: str,
        params: list[Any],
        window: TimeWindow | None,
        query_vector: bytes | None,
        dimension: int,
        limit: int,
        terms: Sequence[str],
    ) -> list[MemoryHit]:
        when: dict[str, datetime | None] = {}
        lexical: list[tuple[str, float]] = []
        rank = owner_bm25 if self.per_user_statistics else file_bm25
        for mid, relevance, moment in rank(
            conn, owner, terms, where, params, self.lexical_candidates
        ):
            lexical.append((mid, relevance))
            when[mid] = from_epoch(moment)
        if window is not None:
            rows = conn.execute(
                f"SELECT m.id, coalesce(m.occurred_at, m.recorded_at) FROM memories m WHERE {where}"
                " AND coalesce(m.occurred_at, m.recorded_at) >= ?"
                " AND coalesce(m.occurred_at, m.recorded_at) < ? LIMIT 500",
                [*params, to_epoch(window.start), to_epoch(window.end)],
            ).fetchall()
            when.update((mid, from_epoch(moment)) for mid, moment in rows)
        vector: list[tuple[str, float]] = []
        pool: dict[str, bytes] = {}
        if query_vector is not None:
            vector, pool = self._vector_ranking(conn, where, params, when, query_vector, dimension)
        top = shortlist(
            lexical=lexical,
            vector=vector,
            when=when,
            window=window,
            fusion=self.fusion,
            pool=pool,
            dimension=dimension,
            near_copy_similarity=self.near_copy_similarity,
            limit=limit,
        )
        if not top:
            return []
        ids = [mid for mid, _ in top]
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM memories WHERE id IN ({', '.join('?' * len(ids))})", ids
        ).fetchall()
        records = {row[0]: _record(row) for row in rows}
        return best_hits(top, records, limit, self.fusion, terms)

    def _vector_ranking(
        self,
        conn: sqlite3.Connection,
        where: str,
        params: list[Any],
        when: dict[str, datetime | None],
        query_vector: bytes,
        dimension: int,
    ) -> tuple[list[tuple[str, float]], dict[str, bytes]]:
        """Candidate ids by cosine similarity (with it), and the candidates' vectors.

        The candidates: the scope's most recent records plus everything the other lists found.
        """
        rows = conn.execute(
            "SELECT m.id, coalesce(m.occurred_at, m.recorded_at), m.vector FROM memories m "
            f"WHERE {where} AND m.vector IS NOT NULL "
            "ORDER BY coalesce(m.occurred_at, m.recorded_at) DESC LIMIT ?",
            [*params, self.recent_candidates],
        ).fetchall()
        pool: dict[str, bytes] = {}
        for mid, moment, blob in rows:
            pool[mid] = blob
            when.setdefault(mid, from_epoch(moment))
        missing = [mid for mid in when if mid not in pool]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            found = conn.execute(
                f"SELECT id, vector FROM memories WHERE vector IS NOT NULL AND "
                f"id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            pool.update((mid, blob) for mid, blob in found)
        return vector_order(pool, query_vector, dimension), pool

    async def get(self, memory_id: str, *, scope: MemoryScope) -> MemoryRecord | None:
        """One record, or ``None`` if it does not exist in this scope."""
        where, params = scope_filter(check_scope(scope), "?")
        now = to_epoch(datetime.now(UTC))

        def read(conn: sqlite3.Connection) -> MemoryRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE id = ? AND {where} "
                f"AND {unexpired('', '?')}",
                [memory_id, *params, now],
            ).fetchone()
            return None if row is None else _record(row)

        return await self._worker.run(read)

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

        def read(conn: sqlite3.Connection) -> list[MemoryRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM memories m WHERE {where} "
                "ORDER BY m.recorded_at DESC, m.rid DESC LIMIT ?",
                [*params, -1 if limit is None else limit],
            ).fetchall()
            return [_record(row) for row in rows]

        return await self._worker.run(read)

    async def delete(self, memory_ids: Sequence[str], *, scope: MemoryScope) -> int:
        """Delete records of ``scope`` with their index entries and vectors; returns how many."""
        ids = check_ids(memory_ids)
        where, params = scope_filter(check_scope(scope), "?")

        def write(conn: sqlite3.Connection) -> int:
            deleted = 0
            with immediate_transaction(conn):
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    deleted += conn.execute(
                        f"DELETE FROM memories WHERE id IN ({', '.join('?' * len(chunk))}) "
                        f"AND {where}",
                        [*chunk, *params],
                    ).rowcount
            return deleted

        return await self._worker.run(write)

    async def supersede(self, memory_id: str, *, scope: MemoryScope, valid_to: datetime) -> bool:
        """Mark a record no longer valid (kept for audit); False if not found in ``scope``."""
        where, params = scope_filter(check_scope(scope), "?")
        check_valid_to(valid_to)

        def write(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    f"UPDATE memories SET valid_to = ? WHERE id = ? AND {where}",
                    [to_epoch(valid_to), memory_id, *params],
                ).rowcount
                == 1
            )

        return await self._worker.run(write)

    async def prune(
        self, *, older_than: timedelta | datetime, dry_run: bool = False
    ) -> MemoryPruneResult:
        """Delete every user's expired records, and records superseded before ``older_than``.

        Expired records are already never recalled; this frees their space (freed pages are
        zeroed, see ``secure_delete``). Superseded records are kept for audit until they are
        older than the age. An operator's task, so it spans all users.

        Raises:
            UsageError: the age is zero or negative, or the datetime naive or in the future.
        """
        cutoff = cutoff_of(older_than)
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            with immediate_transaction(conn):
                (expired,) = conn.execute(
                    "SELECT count(*) FROM memories WHERE expires_at <= ?", (now,)
                ).fetchone()
                (superseded,) = conn.execute(
                    "SELECT count(*) FROM memories WHERE valid_to < ? "
                    "AND (expires_at IS NULL OR expires_at > ?)",
                    (cutoff, now),
                ).fetchone()
                if not dry_run:
                    conn.execute(
                        "DELETE FROM memories WHERE expires_at <= ? OR valid_to < ?", (now, cutoff)
                    )
            return int(expired), int(superseded)

        expired, superseded = await self._worker.run(work)
        return MemoryPruneResult(
            expired=expired,
            superseded=superseded,
            cutoff=datetime.fromtimestamp(cutoff, UTC),
            dry_run=dry_run,
        )

    async def forget(self, *, user_id: str) -> ForgetResult:
        """Delete everything of ``user_id`` (records, full-text entries, vectors), then purge.

        The full-text index is merged (``optimize``) so the user's words do not linger in older
        index segments, and freed pages are zeroed (``secure_delete``). Until the write-ahead
        log is checkpointed, though, the old pages (words included) are still in the ``-wal``
        file and the main file; a checkpoint cannot finish while another connection is reading.
        So it waits for readers (up to ``_PURGE_WAIT_MS``) and reports the outcome: ``purged``
        is False when a reader kept the old pages, and ``remaining`` says to run ``forget``
        again once it has finished (a forget of a user with nothing left only purges).
        """
        user_id = check_forget_user(user_id)

        def write(conn: sqlite3.Connection) -> ForgetResult:
            with immediate_transaction(conn):
                # Work still running for this user (an extraction) must not bring anything back.
                conn.execute(
                    "INSERT INTO memory_forgotten VALUES (?, ?) "
                    "ON CONFLICT (owner) DO UPDATE SET at = excluded.at",
                    (owner_token(user_id), time.time()),
                )
                count = conn.execute("DELETE FROM memories WHERE user_id = ?", (user_id,)).rowcount
                if count:
                    conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
            return ForgetResult(records=count, **self._purge(conn))

        return await self._worker.run(write)

    def _purge(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """Checkpoint and empty the write-ahead log; whether that happened, and if not, why."""
        (timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute(f"PRAGMA busy_timeout = {_PURGE_WAIT_MS}")
        try:
            busy, log, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        if busy == 0 and log <= 0:  # emptied (0), or no log at all (-1: not in WAL mode)
            return {"purged": True}
        return {
            "purged": False,
            "remaining": (
                f"the deleted text is still in {self.path}-wal and {self.path} because another "
                "connection was reading the file; when it has finished (close other threadline "
                "processes and sqlite3 shells on it), run forget again to purge them"
            ),
        }

    async def aclose(self) -> None:
        """Close the file and stop the worker thread."""
        await self._worker.close()
