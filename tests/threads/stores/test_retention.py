"""Every thread database passes the retention kit, against real SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests._sqlite_sql import make_keyed_file
from threadline.testing.retention_conformance import RetentionConformance, RetentionHarness
from threadline.threads.stores.database import PrunableDatabase
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.redis import RedisThreadDatabase
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase


class TestSQLiteRetention(RetentionConformance):
    @pytest.fixture
    async def retention_harness(self, tmp_path: Path) -> RetentionHarness:
        path = tmp_path / "threads.db"

        async def new_database() -> PrunableDatabase:
            database = SQLiteThreadDatabase(path)
            await database.open()
            return database

        return RetentionHarness(
            new_database=new_database, factory=functools.partial(SQLiteThreadDatabase, path)
        )


class TestSQLiteRetentionInAFileFromBefore(RetentionConformance):
    """Pruning a file made before the log layout (keyed messages) keeps every promise."""

    @pytest.fixture
    async def retention_harness(self, tmp_path: Path) -> RetentionHarness:
        path = tmp_path / "threads.db"
        make_keyed_file(path)

        async def new_database() -> PrunableDatabase:
            database = SQLiteThreadDatabase(path)
            await database.open()
            return database

        return RetentionHarness(
            new_database=new_database, factory=functools.partial(SQLiteThreadDatabase, path)
        )


class TestPostgresRetention(RetentionConformance):
    @pytest.fixture
    async def retention_harness(
        self, postgres_url: str, postgres_schema: str
    ) -> AsyncIterator[RetentionHarness]:
        async def new_database() -> PrunableDatabase:
            database = PostgresThreadDatabase(postgres_url, schema=postgres_schema)
            await database.open()
            return database

        yield RetentionHarness(
            new_database=new_database,
            factory=functools.partial(PostgresThreadDatabase, postgres_url, schema=postgres_schema),
        )


class TestRedisRetention(RetentionConformance):
    @pytest.fixture
    async def retention_harness(self, redis_url: str, redis_prefix: str) -> RetentionHarness:
        async def new_database() -> PrunableDatabase:
            database = RedisThreadDatabase(redis_url, key_prefix=redis_prefix)
            await database.open()
            return database

        return RetentionHarness(
            new_database=new_database,
            factory=functools.partial(RedisThreadDatabase, redis_url, key_prefix=redis_prefix),
        )
