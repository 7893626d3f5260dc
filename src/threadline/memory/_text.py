"""Text helpers shared by the memory components: tokens, BM25, dates and short excerpts."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

__all__ = [
    "QUERY_CHARS",
    "bm25_scores",
    "clean",
    "excerpt",
    "format_date",
    "search_query",
    "tokens",
]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be but by did do does for from had has have he her his how i i'm if in "
    "is it its me my of on or our she so than that the their them they this to was we were what "
    "when where which who why will with you your".split()
)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with what no memory store keeps (U+0000, lone surrogates) replaced by U+FFFD.

    The stores refuse such text (PostgreSQL cannot hold it, so neither does SQLite, to answer
    alike); a chat message may still carry it, and must be remembered all the same.
    """
    return _UNSTORABLE.sub("\ufffd", text)


def tokens(text: str) -> list[str]:
    """Lower-cased words without stop words, lightly stemmed (plural ``s`` dropped)."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def bm25_scores(
    query: str, documents: Sequence[str], *, k1: float = 1.2, b: float = 0.75
) -> list[float]:
    """Okapi BM25 of ``query`` against each document (0.0 when nothing matches)."""
    query_terms = set(tokens(query))
    if not query_terms or not documents:
        return [0.0] * len(documents)
    docs = [Counter(tokens(d)) for d in documents]
    lengths = [sum(d.values()) for d in docs]
    average = (sum(lengths) / len(lengths)) or 1.0
    n = len(docs)
    idf = {
        term: math.log(1 + (n - df + 0.5) / (df + 0.5))
        for term in query_terms
        if (df := sum(1 for d in docs if term in d))
    }
    scores: list[float] = []
    for doc, length in zip(docs, lengths, strict=True):
        score = 0.0
        for term, weight in idf.items():
            tf = doc.get(term, 0)
            if tf:
                score += weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
        scores.append(score)
    return scores


def format_date(moment: datetime) -> str:
    """``2026-11-22 (Sunday)``: the form dates take in indexed text and in context."""
    return f"{moment:%Y-%m-%d} ({moment:%A})"


def excerpt(text: str, limit: int) -> str:
    """``text`` with whitespace collapsed, cut to ``limit`` characters at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + " …"


QUERY_CHARS = 2_000
"""The longest query a memory component derives from its input: well under the stores' limit
(4,000 characters), and more than the embedder reads (256 tokens, about 1,000 characters)."""


def search_query(texts: Sequence[str], limit: int = QUERY_CHARS) -> str | None:
    """A bounded search query for a model call's input: memory never limits a message's size.

    ``texts`` are the user's messages, oldest first. The newest comes first in the query (it is
    what is being answered), then earlier ones, newest first, while they fit whole. A newest
    message longer than ``limit`` (a pasted document) contributes its beginning and its end,
    where what it is and what is asked usually are. ``None`` when there is no text at all.
    """
    messages = [" ".join(clean(t).split()) for t in reversed(texts)]
    messages = [m for m in messages if m]
    if not messages:
        return None
    newest, *earlier = messages
    if len(newest) > limit:
        half = limit // 2
        head = newest[:half].rsplit(" ", 1)[0] if " " in newest[:half] else newest[:half]
        tail = newest[-half:].split(" ", 1)[-1] if " " in newest[-half:] else newest[-half:]
        return f"{head} … {tail}"
    parts = [newest]
    size = len(newest)
    for text in earlier:
        if size + 1 + len(text) > limit:
            break
        parts.append(text)
        size += 1 + len(text)
    return "\n".join(parts)
