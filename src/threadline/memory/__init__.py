"""Memory components: context providers, what they add to a model call, and long-term memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.memory.context import Context
from threadline.memory.embedders import MiniLMEmbedder, default_embedder
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryHit, MemoryKind, MemoryRecord, MemoryScope
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.stores import Fusion, SQLiteMemoryStore

if TYPE_CHECKING:
    from threadline.memory.stores.postgres import PostgresMemoryStore

__all__ = [
    "Context",
    "ContextProvider",
    "Embedder",
    "Fusion",
    "MemoryHit",
    "MemoryKind",
    "MemoryRecord",
    "MemoryScope",
    "MemoryStore",
    "MiniLMEmbedder",
    "PostgresMemoryStore",
    "SQLiteMemoryStore",
    "default_embedder",
]


def __getattr__(name: str) -> Any:
    # PostgresMemoryStore needs psycopg (the postgres extra): imported on first use only.
    if name == "PostgresMemoryStore":
        from threadline.memory.stores.postgres import PostgresMemoryStore

        return PostgresMemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
