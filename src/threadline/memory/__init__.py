"""Memory components: context providers, what they add to a model call, and long-term memory.

Stores and the embedder load on first use (``SQLiteMemoryStore``, ``PostgresMemoryStore``,
``MiniLMEmbedder``, ``default_embedder``, ``Fusion``), so importing this package stays light and
never needs an extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from threadline.memory.context import Context
from threadline.memory.conversation import ConversationMemory
from threadline.memory.expiring import ExpiringMemoryStore
from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.opening import open_memory_store
from threadline.memory.preferences import ExtractedFact, UserPreferencesMemory
from threadline.memory.provider import ContextProvider
from threadline.memory.records import (
    ForgetResult,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
)
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.tools import memory_tools

if TYPE_CHECKING:
    from threadline.memory.embedders import MiniLMEmbedder, default_embedder
    from threadline.memory.stores import Fusion, PostgresMemoryStore, SQLiteMemoryStore

__all__ = [
    "Context",
    "ContextProvider",
    "ConversationMemory",
    "Embedder",
    "ExpiringMemoryStore",
    "ExtractedFact",
    "ForgetResult",
    "MemoryPruneResult",
    "Fusion",
    "InMemoryMemoryStore",
    "MemoryHit",
    "MemoryKind",
    "MemoryRecord",
    "MemoryScope",
    "MemoryStore",
    "MiniLMEmbedder",
    "PostgresMemoryStore",
    "SQLiteMemoryStore",
    "UserPreferencesMemory",
    "default_embedder",
    "memory_tools",
    "open_memory_store",
]

_LAZY: dict[str, str] = {
    "Fusion": "threadline.memory.stores",
    "MiniLMEmbedder": "threadline.memory.embedders",
    "PostgresMemoryStore": "threadline.memory.stores",
    "SQLiteMemoryStore": "threadline.memory.stores",
    "default_embedder": "threadline.memory.embedders",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
