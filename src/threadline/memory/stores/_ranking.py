"""One ranking from several: weighted reciprocal rank fusion, recency, and the question's dates.

Both memory stores rank the same way, so this lives apart from their SQL. Scores from BM25 and
from cosine similarity are not comparable, so they are fused by rank (reciprocal rank fusion:
``weight / (k + rank)`` summed over the lists a record appears in). The weights matter: measured
on a long-conversation benchmark, a small embedder fused with equal weight *lowered* turn-level
recall against BM25 over context windows, while on ``bench/memory.py``'s paraphrased questions
embeddings add a lot; the weights are therefore parameters (:class:`Fusion`), the benchmark
reports both lists alone beside the fusion, and the default is explained there. Two small terms
follow: recency (newer
memories win ties, which is also how an updated fact beats the old one) and, when the query
names a period ("last week", "in March"), a bonus for records that happened in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from threadline.memory._temporal import TimeWindow
from threadline.memory.records import MemoryHit, MemoryRecord
from threadline.memory.stores._common import demote_similar

__all__ = ["Fusion", "best_hits", "diversify", "fts_terms", "fuse", "shortlist"]

_STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be been before being below between
    both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yourself yourselves tell remember know said say
    told ask asked mention mentioned""".split()
)


def fts_terms(query: str) -> list[str]:
    """The words of ``query`` worth searching for: lower-cased, without stop words, deduplicated.

    Questions are mostly function words ("what did I tell you about ..."); matching on them would
    rank every chatty turn. If nothing is left, the stop words are kept rather than matching
    nothing.
    """
    words = [w for w in _words(query.lower()) if w]
    kept = [w for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(dict.fromkeys(kept or words))


def _words(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isalnum():
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Fusion:
    """How lists are fused.

    The default leans slightly towards vectors (0.9 : 1.0). On ``bench/memory.py``'s synthetic
    conversations, whose questions often paraphrase, that (with near-copy demotion) reached
    session recall@5 0.972 and turn recall@10 0.997, where equal weights gave 0.957 / 0.991 and
    BM25 alone 0.833 / 0.762; on a public benchmark with more literal questions a small embedder
    was much weaker than BM25, so the tilt is kept small. Recency is a light touch (0.1): more
    made stale turns outrank relevant ones.
    """

    lexical_weight: float = 0.9
    vector_weight: float = 1.0
    recency_weight: float = 0.1
    time_weight: float = 1.0
    """Bonus for a record inside the period the query names, as if ranked first in one more list."""
    k: float = 60.0

    def __post_init__(self) -> None:
        for name in ("lexical_weight", "vector_weight", "recency_weight", "time_weight", "k"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Fusion.{name} must be a finite number >= 0, got {value!r}")


def fuse(
    *,
    lexical: Sequence[str],
    vector: Sequence[str],
    when: Mapping[str, datetime | None],
    window: TimeWindow | None,
    fusion: Fusion,
) -> list[tuple[str, float]]:
    """Ids of the candidates best first, with their fused scores.

    Args:
        lexical: ids by BM25, best first.
        vector: ids by cosine similarity, best first.
        when: every candidate's time (``occurred_at``, else when it was recorded).
        window: the period the query names, if any.
        fusion: the weights.
    """
    scores: dict[str, float] = dict.fromkeys(when, 0.0)
    for weight, ranked in ((fusion.lexical_weight, lexical), (fusion.vector_weight, vector)):
        for rank, memory_id in enumerate(ranked, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (fusion.k + rank)
    if fusion.recency_weight:
        newest = sorted(((t, m) for m, t in when.items() if t is not None), reverse=True)
        for rank, (_, memory_id) in enumerate(newest, start=1):
            scores[memory_id] += fusion.recency_weight / (fusion.k + rank)
    if window is not None and fusion.time_weight:
        for memory_id, moment in when.items():
            if moment is not None and moment in window:
                scores[memory_id] += fusion.time_weight / (fusion.k + 1)
    # Records only in the recency pool (no lexical or vector evidence) stay out unless the query
    # named their period: recency alone says nothing about relevance.
    relevant = set(lexical) | set(vector)
    if window is not None:
        relevant |= {m for m, t in when.items() if t is not None and t in window}
    ranked = sorted(((m, s) for m, s in scores.items() if m in relevant), key=lambda p: -p[1])
    return ranked


REPEAT_PENALTY = 0.5
"""Score factor for a hit that repeats source messages of a better hit of the same thread."""


def diversify(hits: Sequence[MemoryHit]) -> list[MemoryHit]:
    """``hits`` re-ranked so near-copies do not crowd out other evidence.

    Turns are indexed with their previous turn as context, so one striking message appears in two
    records; both would rank high and fill the results with one moment twice. A hit that shares a
    source message with a better hit of the same thread has its score halved (and so moves below
    hits that add something new); it is kept, not dropped.
    """
    seen: set[tuple[str | None, str]] = set()
    out: list[MemoryHit] = []
    for hit in hits:
        keys = {(hit.thread_id, m) for m in hit.message_ids}
        if keys & seen:
            hit = MemoryHit(record=hit.record, score=hit.score * REPEAT_PENALTY)
        seen |= keys
        out.append(hit)
    out.sort(key=lambda h: -h.score)
    return out


def shortlist(
    *,
    lexical: Sequence[str],
    vector: Sequence[str],
    when: Mapping[str, datetime | None],
    window: TimeWindow | None,
    fusion: Fusion,
    pool: Mapping[str, bytes],
    dimension: int,
    near_copy_similarity: float,
    limit: int,
) -> list[tuple[str, float]]:
    """The fused ranking, cut to the ids worth loading.

    Near copies are demoted (when there are vectors), and twice ``limit`` are kept so
    :func:`diversify` can promote hits below them.
    """
    ranked = fuse(lexical=lexical, vector=vector, when=when, window=window, fusion=fusion)
    if pool and near_copy_similarity < 1.0:
        ranked = demote_similar(ranked[: 3 * limit], dict(pool), dimension, near_copy_similarity)
    return ranked[: 2 * limit]


def best_hits(
    top: Sequence[tuple[str, float]], records: Mapping[str, MemoryRecord], limit: int
) -> list[MemoryHit]:
    """The loaded records of a :func:`shortlist` as hits, diversified, the best ``limit``."""
    hits = [MemoryHit(record=records[mid], score=score) for mid, score in top if mid in records]
    return diversify(hits)[:limit]
