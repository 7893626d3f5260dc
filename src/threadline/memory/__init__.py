"""Memory components: context providers, what they add to a model call, and long-term memory."""

from __future__ import annotations

from threadline.memory.context import Context
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryHit, MemoryKind, MemoryRecord, MemoryScope
from threadline.memory.store import Embedder, MemoryStore

__all__ = [
    "Context",
    "ContextProvider",
    "Embedder",
    "MemoryHit",
    "MemoryKind",
    "MemoryRecord",
    "MemoryScope",
    "MemoryStore",
]
