"""Memory components: context providers, what they add to a model call, and long-term memory."""

from __future__ import annotations

from threadline.memory.context import Context
from threadline.memory.embedders import MiniLMEmbedder, default_embedder
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryHit, MemoryKind, MemoryRecord, MemoryScope
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.stores import Fusion, SQLiteMemoryStore

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
    "SQLiteMemoryStore",
    "default_embedder",
]
