"""Stores the memory components are tested against: the reference store and the durable ones.

The components must behave the same on each, so every component test runs on all three.
PostgreSQL needs the shared test server (skipped without it, failing under CI's
``THREADLINE_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.memory.in_memory import InMemoryMemoryStore
from threadline.memory.store import MemoryStore
from threadline.memory.stores import PostgresMemoryStore, SQLiteMemoryStore


@pytest.fixture(params=["in_memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """Every component test runs on each store: the behaviour must not depend on which."""
    memory: MemoryStore
    if request.param == "in_memory":
        memory = InMemoryMemoryStore()
    elif request.param == "sqlite":
        memory = SQLiteMemoryStore(tmp_path / "memory.db", embedder=None)
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        memory = PostgresMemoryStore(url, schema=schema)
    yield memory
    await memory.aclose()
