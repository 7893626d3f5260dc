"""Every shipped memory store passes the public conformance kit, on real SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

import pytest

from threadline.memory.embedders import MiniLMEmbedder
from threadline.memory.expiring import ExpiringMemoryStore
from threadline.memory.stores import SQLiteMemoryStore
from threadline.memory.stores.postgres import PostgresMemoryStore
from threadline.testing.memory_conformance import MemoryHarness, MemoryStoreConformance


class TestSQLiteLexical(MemoryStoreConformance):
    @pytest.fixture
    def memory_harness(self, tmp_path: Path) -> MemoryHarness:
        return MemoryHarness(factory=functools.partial(SQLiteMemoryStore, tmp_path / "memory.db"))


class TestSQLiteWithEmbeddings(MemoryStoreConformance):
    @pytest.fixture
    def memory_harness(self, tmp_path: Path, minilm: MiniLMEmbedder) -> MemoryHarness:
        return MemoryHarness(
            factory=functools.partial(SQLiteMemoryStore, tmp_path / "memory.db", embedder=minilm)
        )


class TestPostgresLexical(MemoryStoreConformance):
    @pytest.fixture
    def memory_harness(self, postgres_url: str, postgres_schema: str) -> MemoryHarness:
        return MemoryHarness(
            factory=functools.partial(PostgresMemoryStore, postgres_url, schema=postgres_schema)
        )


class TestPostgresWithEmbeddings(MemoryStoreConformance):
    @pytest.fixture
    def memory_harness(
        self, postgres_url: str, postgres_schema: str, minilm: MiniLMEmbedder
    ) -> MemoryHarness:
        return MemoryHarness(
            factory=functools.partial(
                PostgresMemoryStore, postgres_url, schema=postgres_schema, embedder=minilm
            )
        )


def _expiring_sqlite(path: Path) -> ExpiringMemoryStore:
    """A module-level factory: the kit pickles it for its child processes."""
    return ExpiringMemoryStore(SQLiteMemoryStore(path), ttl={"turn": timedelta(days=7)})


class TestExpiringSQLite(MemoryStoreConformance):
    """The lifetime-per-kind wrapper keeps every promise of the store it wraps."""

    @pytest.fixture
    def memory_harness(self, tmp_path: Path) -> MemoryHarness:
        return MemoryHarness(factory=functools.partial(_expiring_sqlite, tmp_path / "memory.db"))
