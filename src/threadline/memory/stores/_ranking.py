"""One ranking from several: score fusion, recency, the question's dates, then diversity.

Both memory stores rank the same way, so this lives apart from their SQL. Each list's scores are
standardised before they are weighted and added: BM25 (or ``ts_rank``) over the lexical
candidates, cosine similarity over every candidate with a vector, each as standard deviations
above its list's mean (negative counts as 0). Measured on the development half of LoCoMo (real
conversations, ``bench/memory.py``), this beat reciprocal rank fusion, which gives a weak list's
first ranks the same say as a strong list's whatever their scores: with a small embedder, rank
fusion at any vector weight *lowered* turn recall@10 below BM25 alone, while standardised scores
let vectors add where they are sure and keep quiet where they are not. Two small terms follow:
recency (newer memories win ties, which is also how an updated fact beats the old one) and, when
the query names a period ("last week", "in March"), a bonus for records that happened in it.

After the records are loaded, :func:`diversify` applies what needs them: a user's message comes
before the windows that only hold an assistant's echo of it, a past assistant reply counts a
little less than what the user said, a record repeating messages of a better one counts a little
less.
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


Scored = tuple[str, float]
"""A candidate's id and its score in one list (higher is better)."""

VECTOR_DEPTH = 200
"""How many of the best cosine similarities are normalised and fused; below them a record has no
vector evidence (its similarity is no better than the average record's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fusion:
    """The weights of memory ranking: how the lists are fused, and how hits are diversified.

    Chosen on the development half of LoCoMo (real two-person conversations, literal questions)
    under the constraint that ``bench/memory.py``'s synthetic set (paraphrased questions) stays
    above its targets; ``bench/memory.py`` prints a table for each.
    """

    lexical_weight: float = 1.0
    """Weight of full-text relevance (standardised BM25)."""
    vector_weight: float = 0.3
    """Weight of cosine similarity (standardised; the best ``VECTOR_DEPTH`` count)."""
    recency_weight: float = 0.1
    """Newer records win ties: ``recency_weight * (k + 1) / (k + rank by time)``."""
    time_weight: float = 1.0
    """Bonus for a record inside the period the query names, as if it were first in one more
    list."""
    k: float = 60.0
    """How slowly the recency term decays with rank."""
    repeat_penalty: float = 0.9
    """Score factor for a hit that repeats a message of a better hit of the same thread. Turns are
    indexed with the turns before them, so neighbouring records overlap; a small penalty keeps a
    passage and its continuation together (the answer often follows the matching turn)."""
    assistant_weight: float = 0.85
    """Score factor for a past assistant reply: what the user said and facts about the user come
    first, so a wrong answer of an earlier chat cannot come back ahead of the user's own words."""
    user_words_first: bool = True
    """A user's message outranks the windows that hold an assistant's echo of it (an assistant
    reply repeating the user's words, and the user's next message, whose context holds both)."""

    named_speaker_bonus: float = 1.0
    """Added to a hit whose own message was said by someone the query names ("What does Bea
    cook?" puts Bea's words before what others said to or about her). Measured on LoCoMo's
    development half (``bench/memory.py``): turn recall@1 0.200 to 0.245, recall@10 0.830 to
    0.846, session recall@5 0.943 to 0.946. A record says who spoke in its ``author`` metadata
    (a message's ``author_name``)."""

    def __post_init__(self) -> None:
        for name in (
            "lexical_weight",
            "vector_weight",
            "recency_weight",
            "time_weight",
            "k",
            "named_speaker_bonus",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Fusion.{name} must be a finite number >= 0, got {value!r}")
        for name in ("repeat_penalty", "assistant_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 < value <= 1:
                raise ValueError(f"Fusion.{name} must be in (0, 1], got {value!r}")


def _standardised(scored: Sequence[Scored]) -> dict[str, float]:
    """Each score as standard deviations above the list's mean, at least 0.

    A list whose best candidate stands out gets a large value for it, a flat list (every
    candidate alike: a common word, or a query the embedder cannot tell apart) small values for
    all. So each list speaks in proportion to how sure it is, per query: measured on the
    development half of LoCoMo this kept turn recall@10 at 0.833 with vectors at half weight,
    where min-max normalisation (the best always 1.0) fell to 0.80 and rank fusion to 0.70.

    A degenerate list cannot put NaN into a score: one candidate, or candidates all alike (zero
    spread), each get 1.0 (they matched, equally); a score that is not a finite number (a custom
    embedder's or a database's oddity) counts as no evidence.
    """
    finite = [(m, score) for m, score in scored if math.isfinite(score)]
    if not finite:
        return {}
    # Standard scores do not change with the unit: scaled to at most 1, no square overflows.
    scale = max(abs(score) for _, score in finite) or 1.0
    values = [score / scale for _, score in finite]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if spread <= 1e-12:
        return {m: 1.0 for m, _ in finite}
    return {m: max(0.0, (v - mean) / spread) for (m, _), v in zip(finite, values, strict=True)}


def fuse(
    *,
    lexical: Sequence[Scored],
    vector: Sequence[Scored],
    when: Mapping[str, datetime | None],
    window: TimeWindow | None,
    fusion: Fusion,
) -> list[tuple[str, float]]:
    """Ids of the candidates best first, with their fused scores.

    Args:
        lexical: ids with their BM25 relevance (higher is better), best first.
        vector: ids with their cosine similarity to the query, most similar first.
        when: every candidate's time (``occurred_at``, else when it was recorded).
        window: the period the query names, if any.
        fusion: the weights.
    """
    scores: dict[str, float] = dict.fromkeys(when, 0.0)
    vector_scores = _standardised(vector)
    for weight, standardised in (
        (fusion.lexical_weight, _standardised(lexical)),
        (
            fusion.vector_weight,
            {m: vector_scores[m] for m, _ in vector[:VECTOR_DEPTH] if m in vector_scores},
        ),
    ):
        for memory_id, value in standardised.items():
            scores[memory_id] = scores.get(memory_id, 0.0) + weight * value
    if fusion.recency_weight:
        newest = sorted(((t, m) for m, t in when.items() if t is not None), reverse=True)
        for rank, (_, memory_id) in enumerate(newest, start=1):
            scores[memory_id] += fusion.recency_weight * (fusion.k + 1) / (fusion.k + rank)
    if window is not None and fusion.time_weight:
        for memory_id, moment in when.items():
            if moment is not None and moment in window:
                scores[memory_id] += fusion.time_weight
    # Records only in the recency pool (no lexical or vector evidence) stay out unless the query
    # named their period: recency alone says nothing about relevance.
    relevant = {m for m, _ in lexical} | {m for m, _ in vector[:VECTOR_DEPTH]}
    if window is not None:
        relevant |= {m for m, t in when.items() if t is not None and t in window}
    return sorted(((m, s) for m, s in scores.items() if m in relevant), key=lambda p: -p[1])


def _is_assistant(hit: MemoryHit) -> bool:
    return hit.record.kind == "turn" and hit.record.metadata.get("role") == "assistant"


def _said_by_named(hit: MemoryHit, terms: Sequence[str]) -> bool:
    """Whether the query names the author of the hit's own message (every word of the name).

    The message itself need not say the query's other words: the answer is often a short reply
    ("I've had them for three years") whose subject is in the messages before it. Requiring a
    query word in the reply itself halved the gain on LoCoMo (turn recall@1 0.216, not 0.245).
    """
    author = hit.record.metadata.get("author")
    if not isinstance(author, str):
        return False
    name = _words(author.lower())
    return bool(name) and all(w in terms for w in name)


def _stem(word: str) -> str:
    """A crude stem, the same on both sides of a comparison ("peanuts" and "peanut" agree)."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)][:6]
    return word[:6]


def _query_words(hit: MemoryHit, stems: frozenset[str]) -> frozenset[str]:
    """The query's words that the hit's *own* message says (not its context)."""
    own = str(hit.record.metadata.get("content") or hit.text)
    return stems & {_stem(w) for w in _words(own.lower())}


def _user_words_first(hits: Sequence[MemoryHit], terms: Sequence[str]) -> list[float]:
    """Scores in which a user's message outranks the windows that carry an assistant's echo of it.

    A turn is indexed with the messages before it, so an assistant reply repeating the user's
    words ("Noted: you are allergic to peanuts.") holds them twice, as its context and as its
    own text, and so does the user's next message ("Thanks!"), whose context holds both: full
    text search ranks either above the user's own statement, whatever ``assistant_weight`` is.
    Here, when a window carries a user's message that is itself a hit, and an assistant message
    of that window says query words but none the user's message does not say (an echo, not new
    information), the user's hit is lifted to the window's score and placed first. An assistant
    reply that adds a query word of its own (an answer) is left where it ranked: measured on
    LoCoMo with the second speaker as the assistant, this costs neither session recall@5 nor
    turn recall@10, where lifting on any overlap cost 0.02 turn recall@10.
    """
    scores = [h.score for h in hits]
    stems = frozenset(_stem(t) for t in terms)
    if not stems:
        return scores
    owner: dict[tuple[str | None, str], int] = {}
    for i, hit in enumerate(hits):
        if hit.record.kind == "turn" and hit.message_ids:
            owner.setdefault((hit.thread_id, hit.message_ids[-1]), i)
    said = [_query_words(h, stems) for h in hits]
    lifted = list(scores)
    for i, hit in enumerate(hits):
        if hit.record.kind != "turn":
            continue
        carried = [owner.get((hit.thread_id, m)) for m in hit.message_ids[:-1]]
        inside = [j for j in carried if j is not None and j != i]
        echoes = [k for k in (i, *inside) if _is_assistant(hits[k]) and said[k]]
        for j in inside:
            if (
                said[j]
                and not _is_assistant(hits[j])
                and any(said[k] <= said[j] for k in echoes)
                and scores[i] > lifted[j]
            ):
                lifted[j] = scores[i]
    return lifted


def diversify(
    hits: Sequence[MemoryHit], fusion: Fusion | None = None, terms: Sequence[str] = ()
) -> list[MemoryHit]:
    """``hits`` re-ranked: the user's words first, past assistant replies and repeats a bit less.

    * With ``user_words_first``, a user's message outranks windows carrying an assistant's echo
      of it (see :func:`_user_words_first`; ``terms`` are the query's words).
    * A hit whose own message was said by someone the query names gains
      ``named_speaker_bonus``: a question about a person is mostly answered by their own words.
    * A past assistant reply's score is multiplied by ``assistant_weight``.
    * Turns are indexed with the turns before them as context, so one striking message appears
      in several records. A hit that shares a source message with a better hit of the same thread
      gets ``repeat_penalty``. It is kept small: the record after a matching one often holds the
      answer (measured: a penalty of 0.5 cost LoCoMo turn recall@10 0.04).

    Hits are kept, never dropped.
    """
    fusion = fusion or Fusion()
    scores = _user_words_first(hits, terms) if fusion.user_words_first else [h.score for h in hits]
    lifted = {i for i, hit in enumerate(hits) if scores[i] > hit.score}
    if fusion.named_speaker_bonus and terms:
        for i, hit in enumerate(hits):
            if _said_by_named(hit, terms):
                scores[i] += fusion.named_speaker_bonus
    for i, hit in enumerate(hits):
        if _is_assistant(hit):
            scores[i] *= fusion.assistant_weight
    # A lifted user's message goes before the window it tied with.
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i not in lifted))
    seen: set[tuple[str | None, str]] = set()
    out: list[MemoryHit] = []
    for i in order:
        hit = hits[i]
        keys = {(hit.thread_id, m) for m in hit.message_ids}
        score = scores[i] * fusion.repeat_penalty if keys & seen else scores[i]
        seen |= keys
        out.append(MemoryHit(record=hit.record, score=score))
    out.sort(key=lambda h: -h.score)
    return out


def shortlist(
    *,
    lexical: Sequence[Scored],
    vector: Sequence[Scored],
    when: Mapping[str, datetime | None],
    window: TimeWindow | None,
    fusion: Fusion,
    pool: Mapping[str, bytes],
    dimension: int,
    near_copy_similarity: float,
    limit: int,
) -> list[tuple[str, float]]:
    """The fused ranking, cut to the ids worth loading.

    Near copies are demoted (when there are vectors), and three times ``limit`` are kept so
    :func:`diversify` can promote hits below them.
    """
    ranked = fuse(lexical=lexical, vector=vector, when=when, window=window, fusion=fusion)
    if pool and near_copy_similarity < 1.0:
        ranked = demote_similar(ranked[: 3 * limit], dict(pool), dimension, near_copy_similarity)
    return ranked[: 3 * limit]


def best_hits(
    top: Sequence[tuple[str, float]],
    records: Mapping[str, MemoryRecord],
    limit: int,
    fusion: Fusion | None = None,
    terms: Sequence[str] = (),
) -> list[MemoryHit]:
    """The loaded records of a :func:`shortlist` as hits, diversified, the best ``limit``."""
    hits = [MemoryHit(record=records[mid], score=score) for mid, score in top if mid in records]
    return diversify(hits, fusion, terms)[:limit]
