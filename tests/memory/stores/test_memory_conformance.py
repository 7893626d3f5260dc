"""Every shipped memory store passes the public conformance kit, on real SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from threadline.memory.embedders import MiniLMEmbedder
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
