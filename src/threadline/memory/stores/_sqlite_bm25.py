"""BM25 for the SQLite memory store: FTS5's, or one computed from one user's records only.

FTS5's own ``bm25()`` counts how rare a word is, and how long records are on average, over the
whole file, every user's records included. So in a file shared by many users (a server's), what
user A stores reorders user B's own results: a side channel across users (issue 20, item 12), and
a ranking that drifts as strangers talk. :func:`owner_bm25` lets FTS5 only *find* records and
scores them from the user's own statistics:

- how many of the user's records hold each word (counted from the user's matches), and how many
  times each candidate holds it (from FTS5's ``highlight()``, which reads only that record);
- how many records the user has and their average length, kept per user in
  ``memory_owner_stats`` by triggers on every write (lengths in characters: the score only needs a
  record's length relative to the user's average).

Which records are candidates does not depend on other users either: every record of the user
holding a word, or, for a word in more than :data:`WORD_MATCH_CAP` of them (so common for this
user that it weighs little), the newest :data:`WORD_MATCH_CAP` of those.

It costs: measured on the development half of LoCoMo (five conversations in one file), session
R@5 0.934 instead of 0.942 and turn R@10 0.814 instead of 0.823 lexically (rarity estimated from
one conversation is noisier than from five), and recall about 3x slower (every candidate's
``highlight()``). So it is chosen where users share a file and must not see each other
(``SQLiteMemoryStore(per_user_statistics=True)``, which ``threadline serve`` uses); a file of
one user ranks the same either way.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

__all__ = ["OWNER_STATS_SCHEMA", "WORD_MATCH_CAP", "count_owner_stats", "file_bm25", "owner_bm25"]

WORD_MATCH_CAP = 2_000
"""The most records one word brings in as candidates; the newest win (see the module doc)."""

_MARK = "\ue000"
_K1 = 1.2
_B = 0.75

OWNER_STATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_owner_stats (
    owner   TEXT PRIMARY KEY,
    records INTEGER NOT NULL,
    chars   INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS memories_stats_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memory_owner_stats SELECT new.owner, 0, 0
    WHERE NOT EXISTS (SELECT 1 FROM memory_owner_stats WHERE owner = new.owner);
    UPDATE memory_owner_stats SET records = records + 1, chars = chars + length(new.text)
    WHERE owner = new.owner;
END;
CREATE TRIGGER IF NOT EXISTS memories_stats_ad AFTER DELETE ON memories BEGIN
    UPDATE memory_owner_stats SET records = records - 1, chars = chars - length(old.text)
    WHERE owner = old.owner;
    DELETE FROM memory_owner_stats WHERE owner = old.owner AND records <= 0;
END;
CREATE TRIGGER IF NOT EXISTS memories_stats_au AFTER UPDATE OF text, owner ON memories BEGIN
    UPDATE memory_owner_stats SET records = records - 1, chars = chars - length(old.text)
    WHERE owner = old.owner;
    DELETE FROM memory_owner_stats WHERE owner = old.owner AND records <= 0;
    INSERT INTO memory_owner_stats SELECT new.owner, 0, 0
    WHERE NOT EXISTS (SELECT 1 FROM memory_owner_stats WHERE owner = new.owner);
    UPDATE memory_owner_stats SET records = records + 1, chars = chars + length(new.text)
    WHERE owner = new.owner;
END;
"""
"""Per-user record counts and lengths, kept by triggers so every writer (any process, any
version that has the triggers in the file) keeps them exact. No ``INSERT OR IGNORE`` in them: a
store's upsert (``ON CONFLICT ... DO UPDATE``) overrides a trigger's conflict policy."""


def count_owner_stats(conn: sqlite3.Connection) -> None:
    """Count ``memory_owner_stats`` afresh once per file (files written before it existed).

    Runs in the caller's write transaction, after the triggers exist: writes committed before it
    are counted here, writes after it by the triggers, so the counts are exact with other
    processes writing. A flag in ``memory_meta`` says it has been done.
    """
    if conn.execute("SELECT 1 FROM memory_meta WHERE key = 'owner_stats'").fetchone():
        return
    conn.execute("DELETE FROM memory_owner_stats")
    conn.execute(
        "INSERT INTO memory_owner_stats "
        "SELECT owner, count(*), coalesce(sum(length(text)), 0) FROM memories GROUP BY owner"
    )
    conn.execute("INSERT INTO memory_meta VALUES ('owner_stats', 'counted')")


def file_bm25(
    conn: sqlite3.Connection,
    owner: str,
    terms: Sequence[str],
    where: str,
    params: Sequence[Any],
    limit: int,
) -> list[tuple[str, float, float | None]]:
    """Like :func:`owner_bm25`, scored by FTS5's ``bm25()`` (statistics of the whole file)."""
    if not terms:
        return []
    words = " OR ".join(f'"{t}"' for t in terms)
    # FTS5's bm25() is negative, more negative is better.
    rows = conn.execute(
        "SELECT m.id, -bm25(memories_fts, 1.0, 0.0) AS relevance, "
        "coalesce(m.occurred_at, m.recorded_at) FROM memories_fts f "
        f"JOIN memories m ON m.rid = f.rowid WHERE memories_fts MATCH ? AND {where} "
        "ORDER BY relevance DESC LIMIT ?",
        [f'owner : "{owner}" AND text : ({words})', *params, limit],
    ).fetchall()
    return [(mid, float(relevance), moment) for mid, relevance, moment in rows]


def owner_bm25(
    conn: sqlite3.Connection,
    owner: str,
    terms: Sequence[str],
    where: str,
    params: Sequence[Any],
    limit: int,
) -> list[tuple[str, float, float | None]]:
    """The ``limit`` best records of ``owner`` for ``terms`` that pass ``where``.

    Returns (record id, BM25 score, the record's moment as epoch seconds), best first; ties go to
    the newer record, so the order is reproducible.
    """
    stats = conn.execute(
        "SELECT records, chars FROM memory_owner_stats WHERE owner = ?", (owner,)
    ).fetchone()
    if stats is None or not terms:
        return []
    records, chars = int(stats[0]), int(stats[1])
    average = max(chars / records, 1.0)
    weights: dict[int, list[tuple[float, int]]] = {}
    for term in terms:
        match = f'owner : "{owner}" AND text : "{term}"'
        rows = conn.execute(
            "SELECT rowid, highlight(memories_fts, 0, ?, '') FROM memories_fts "
            "WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT ?",
            (_MARK, match, WORD_MATCH_CAP + 1),
        ).fetchall()
        if not rows:
            continue
        found = len(rows)
        if found > WORD_MATCH_CAP:
            (found,) = conn.execute(
                "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (match,)
            ).fetchone()
            del rows[WORD_MATCH_CAP:]
        idf = math.log(1.0 + (records - found + 0.5) / (found + 0.5))
        for rid, marked in rows:
            weights.setdefault(rid, []).append((idf, max(marked.count(_MARK), 1)))
    if not weights:
        return []
    scored: list[tuple[str, float, float | None, int]] = []
    rids = list(weights)
    for start in range(0, len(rids), 500):
        chunk = rids[start : start + 500]
        rows = conn.execute(
            "SELECT m.rid, m.id, length(m.text), coalesce(m.occurred_at, m.recorded_at) "
            f"FROM memories m WHERE m.rid IN ({', '.join('?' * len(chunk))}) AND {where}",
            [*chunk, *params],
        ).fetchall()
        for rid, mid, length, moment in rows:
            norm = _K1 * (1.0 - _B + _B * length / average)
            score = sum(idf * tf * (_K1 + 1.0) / (tf + norm) for idf, tf in weights[rid])
            scored.append((mid, score, moment, rid))
    scored.sort(key=lambda s: (-s[1], -s[3]))
    return [(mid, score, moment) for mid, score, moment, _ in scored[:limit]]
