"""The one notice that memory search is lexical only, said once per process.

Whichever part notices first says it: ``default_embedder`` without the extra, or a store made
without an embedder.
"""

from __future__ import annotations

import logging

__all__ = ["warn_lexical_only"]

logger = logging.getLogger("threadline.memory")

_said = False


def warn_lexical_only(why: str) -> None:
    """Log once that memory search is lexical only (BM25), why, and how to get vectors."""
    global _said
    if not _said:
        _said = True
        logger.warning(
            "memory search is lexical only (BM25): %s. For semantic search install the memory "
            "extra (pip install 'threadline[memory]') and pass "
            "embedder=threadline.memory.default_embedder()",
            why,
        )
