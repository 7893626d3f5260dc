"""``open_memory_store``: the one way the command line and the server open long-term memory.

``threadline chat``, ``threadline memory`` and ``threadline serve --memory`` each used to build
their store by hand, and drifted: the server's had no embedder, so its search was silently
lexical only. This function is what they share, and what an application can use for the same
result: a spec in, a store with the default embedder out (and the one notice, once per process,
when the ``memory`` extra is missing and search is lexical only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from threadline._utils import data_home
from threadline.exceptions import UsageError
from threadline.memory.store import MemoryStore

if TYPE_CHECKING:
    from threadline.memory.store import Embedder

__all__ = ["MEMORY_FILE", "open_memory_store"]

MEMORY_FILE = "memory.sqlite3"
"""The file name of the default SQLite memory store, under ``$THREADLINE_HOME``."""

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_memory_store(
    spec: str | Path | None = None,
    *,
    postgres_schema: str = "public",
    shared_by_users: bool = False,
) -> MemoryStore:
    """A memory store for ``spec``, searching with the default embedder when it is installed.

    Args:
        spec: a ``postgresql://`` (or ``postgres://``) URL for a ``PostgresMemoryStore``, which
            several processes and hosts can share; otherwise the path of a SQLite file
            (created with its folder). ``None``: ``memory.sqlite3`` under ``$THREADLINE_HOME``.
        postgres_schema: the PostgreSQL schema of the tables (created if missing).
        shared_by_users: many users' memories live in this store (a server's): a SQLite file
            then ranks each user's results from that user's records only, so nobody's records
            reorder anyone else's (``SQLiteMemoryStore(per_user_statistics=True)``; PostgreSQL
            always does).

    Raises:
        UsageError: the spec is empty, or a PostgreSQL URL without the ``postgres`` extra.
    """
    # Imported here: stores and embedder load on first use, not with the package.
    from threadline.memory.embedders import default_embedder

    if spec is None:
        spec = data_home() / MEMORY_FILE
    text = str(spec)
    if not text.strip():
        raise UsageError(
            "the memory store spec is empty: give a SQLite file path or a postgresql:// URL"
        )
    if text.lower().startswith(_POSTGRES_SCHEMES):
        try:
            from threadline.memory.stores.postgres import PostgresMemoryStore
        except ImportError as exc:
            raise UsageError(
                f"a PostgreSQL memory store needs the postgres extra: "
                f"pip install 'threadline[postgres]' ({exc})"
            ) from exc
        embedder: Embedder | None = default_embedder()
        return PostgresMemoryStore(text, schema=postgres_schema, embedder=embedder)
    from threadline.memory.stores import SQLiteMemoryStore

    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteMemoryStore(path, embedder=default_embedder(), per_user_statistics=shared_by_users)
