"""The one notice that memory search is lexical only, said once per process.

Whichever part notices first says it: ``default_embedder`` without the extra, or a store made
without an embedder.
"""

from __future__ import annotations

import logging

__all__ = ["INSTALL", "PASS_EMBEDDER", "warn_lexical_only"]

logger = logging.getLogger("threadline.memory")

_said = False


INSTALL = "for semantic search install the memory extra: pip install 'threadline[memory]'"
"""The remedy when the extra is missing: what a person at a terminal can do."""

PASS_EMBEDDER = (
    "for semantic search pass embedder=threadline.memory.default_embedder() (memory extra)"
)
"""The remedy for code that made a store without an embedder: only a programmer sees it."""


def warn_lexical_only(why: str, remedy: str = INSTALL) -> None:
    """Log once that memory search is lexical only (BM25), why, and what to do about it.

    The commands open memory through ``default_embedder()``, which speaks first when the extra
    is missing, so a person at a terminal is told what to install, never what to pass in code.
    """
    global _said
    if not _said:
        _said = True
        logger.warning("memory search is lexical only (BM25): %s; %s", why, remedy)
