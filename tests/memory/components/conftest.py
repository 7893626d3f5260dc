"""Stores the memory components are tested against: the reference store and the embedded one."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.store import MemoryStore

STORES = ["in_memory"]
if importlib.util.find_spec("threadline.memory.stores") is not None:
    STORES.append("sqlite")


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """Every component test runs on each store: the behaviour must not depend on which."""
    if request.param == "in_memory":
        memory: MemoryStore = InMemoryMemoryStore()
    else:
        factory: Any = importlib.import_module("threadline.memory.stores").SQLiteMemoryStore
        memory = cast(MemoryStore, factory(tmp_path / "memory.db", embedder=None))
    yield memory
    await memory.aclose()
