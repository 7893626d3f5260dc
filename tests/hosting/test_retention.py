"""``ServerConfig.retention`` (``serve --retention``): old conversations go while serving.

Driven by the official SDK against the server on loopback, on SQLite and on PostgreSQL. Ages are
seconds here so the test can watch them pass; the periodic prune runs every tenth of the age.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest

from threadline import ChatAgent, ScriptedChatClient
from threadline.exceptions import UsageError
from threadline.hosting import ServerConfig, create_app
from threadline.hosting._approvals import KIND as APPROVAL_KIND
from threadline.hosting._retention import EXPIRING_RECORDS
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

from .conftest import KEYS, drop_schema, postgres_database, start_server

RETENTION = timedelta(seconds=4)


@pytest.fixture(params=["sqlite", "postgres"])
async def retaining_server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    agent = ChatAgent(ScriptedChatClient(["ok"] * 20), "You are a test agent.")
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"), retention=RETENTION)
    database: PostgresThreadDatabase | None = None
    if request.param == "postgres":
        database = await postgres_database("tl_ret_" + os.urandom(4).hex())
    uv, task, url = await start_server(agent, config, store=database)
    try:
        yield url
    finally:
        uv.should_exit = True
        await task
        if database is not None:
            await drop_schema(database.schema)


async def _exists(client: openai.AsyncOpenAI, conversation_id: str) -> bool:
    try:
        await client.conversations.retrieve(conversation_id)
    except openai.NotFoundError:
        return False
    return True


async def test_old_conversations_go_and_active_ones_stay(retaining_server: str) -> None:
    client = openai.AsyncOpenAI(base_url=retaining_server, api_key="key-alice")
    idle = await client.conversations.create(items=[{"role": "user", "content": "hello"}])
    active = await client.conversations.create(items=[{"role": "user", "content": "hi"}])
    old_reply = await client.responses.create(model="threadline", input="a", conversation=idle.id)
    started = time.monotonic()
    await asyncio.sleep(RETENTION.total_seconds() / 2)
    assert await _exists(client, idle.id)  # not yet old
    await client.responses.create(model="threadline", input="still here", conversation=active.id)
    while await _exists(client, idle.id):
        assert time.monotonic() - started < RETENTION.total_seconds() * 2, "never pruned"
        await asyncio.sleep(0.1)
    # The idle conversation went with its response object; the active one is whole.
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(old_reply.id)
    assert await _exists(client, active.id)
    items = await client.conversations.items.list(active.id)
    texts = [c.text for item in items.data for c in getattr(item, "content", []) or []]
    assert "hi" in texts and "still here" in texts
    await client.close()


def test_a_bad_retention_is_refused(tmp_path: Path) -> None:
    agent = ChatAgent(ScriptedChatClient([]))
    for bad in (timedelta(0), timedelta(seconds=-1)):
        config = ServerConfig(db_path=str(tmp_path / "s.db"), retention=bad)
        with pytest.raises(UsageError, match="retention"):
            create_app(agent, config)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_prune_ends_old_approval_claims_and_keeps_recent_ones(
    tmp_path: Path, backend: str
) -> None:
    """Every answered approval request leaves a claim record; the prune the server runs
    (``delete_threads`` with ``EXPIRING_RECORDS``) must end them too, or they pile up forever."""
    database: SQLiteThreadDatabase | PostgresThreadDatabase
    if backend == "sqlite":
        database = SQLiteThreadDatabase(tmp_path / "server.db")
    else:
        database = await postgres_database("tl_ret_" + os.urandom(4).hex())
    try:
        answered = {"response_id": "resp_1"}
        await database.commit(
            ThreadBatch().put(
                ThreadRecord(kind=APPROVAL_KIND, id="apreq_old", owner="k1", body=answered)
            )
        )
        # A claim whose server died before its answer was recorded (as the server claims).
        stuck = await database.claim_record(
            APPROVAL_KIND, "apreq_stuck", owner="k1", stale_after=1e12
        )
        assert stuck is None
        await asyncio.sleep(0.05)
        cutoff = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await database.commit(
            ThreadBatch().put(
                ThreadRecord(kind=APPROVAL_KIND, id="apreq_new", owner="k1", body=answered)
            )
        )
        result = await database.delete_threads(older_than=cutoff, expire_records=EXPIRING_RECORDS)
        assert result.records == 2
        assert await database.get_record(APPROVAL_KIND, "apreq_old", owner="k1") is None
        assert await database.get_record(APPROVAL_KIND, "apreq_stuck", owner="k1") is None
        kept = await database.get_record(APPROVAL_KIND, "apreq_new", owner="k1")
        assert kept is not None and kept.body == answered
    finally:
        await database.aclose()
        if isinstance(database, PostgresThreadDatabase):
            await drop_schema(database.schema)
