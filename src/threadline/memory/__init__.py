"""Memory components: context providers, what they add to a model call, and long-term memory."""

from __future__ import annotations

from threadline.memory.context import Context
from threadline.memory.conversation import ConversationMemory
from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.preferences import ExtractedFact, UserPreferencesMemory
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryHit, MemoryKind, MemoryRecord, MemoryScope
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.stores import Fusion, SQLiteMemoryStore
from threadline.memory.tools import memory_tools

__all__ = [
    "Context",
    "ContextProvider",
    "ConversationMemory",
    "Embedder",
    "ExtractedFact",
    "Fusion",
    "InMemoryMemoryStore",
    "MemoryHit",
    "MemoryKind",
    "MemoryRecord",
    "MemoryScope",
    "MemoryStore",
    "SQLiteMemoryStore",
    "UserPreferencesMemory",
    "memory_tools",
]
