"""Stores the memory components are tested against: the reference store and the embedded one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.store import MemoryStore
from threadline.memory.stores import SQLiteMemoryStore

STORES = ["in_memory", "sqlite"]


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """Every component test runs on each store: the behaviour must not depend on which."""
    if request.param == "in_memory":
        memory: MemoryStore = InMemoryMemoryStore()
    else:
        memory = SQLiteMemoryStore(tmp_path / "memory.db", embedder=None)
    yield memory
    await memory.aclose()
