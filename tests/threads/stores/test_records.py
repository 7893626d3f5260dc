"""Thread databases: records beside threads, batches that commit whole, claims, staged turns.

Run against a real SQLite file and a real PostgreSQL schema; the server's tests drive the same
code through the official SDK, these pin the primitive itself (the CLI keeps a thread's
``serialize()`` state beside it this way).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    ConcurrentThreadUpdateError,
    ContextProvider,
    RecordDatabase,
    Role,
    ScriptedChatClient,
    StagedStore,
    ThreadBatch,
    ThreadRecord,
    UsageError,
    open_database,
)
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.redis import RedisThreadDatabase
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordDatabase]:
    if request.param == "sqlite":
        made: RecordDatabase = SQLiteThreadDatabase(tmp_path / "threads.db")
    else:
        url: str = request.getfixturevalue("postgres_url")
        made = PostgresThreadDatabase(url, schema=request.getfixturevalue("postgres_schema"))
    await made.open()
    yield made
    await made.aclose()


def _texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [m.text for m in messages]


async def test_records_are_kept_by_kind_owner_and_id(database: RecordDatabase) -> None:
    run = ThreadRecord(kind="run", id="r1", owner="alice", parent="t1", body={"n": 1})
    await database.commit(
        ThreadBatch().put(
            ThreadRecord(kind="thread", id="t1", owner="alice", thread_id="t1", body={"x": 1}),
            run,
            ThreadRecord(kind="run", id="r2", owner="alice", parent="t1", body={"n": 2}),
            ThreadRecord(kind="run", id="r3", owner="alice", parent="t9", body={"n": 3}),
        )
    )
    found = await database.get_record("thread", "t1", owner="alice")
    assert found is not None and found.body == {"x": 1} and found.thread_id == "t1"
    assert await database.get_record("thread", "t1", owner="bob") is None  # owners never mix
    assert await database.get_record("run", "t1", owner="alice") is None  # nor kinds
    listed = await database.list_records("run", owner="alice", parent="t1")
    assert [r.id for r in listed] == ["r2", "r1"]  # newest first
    assert [r.id for r in await database.list_records("run", owner="alice", limit=1)] == ["r3"]
    await database.commit(ThreadBatch().put(dataclasses.replace(run, body={"n": 9})))
    again = await database.get_record("run", "r1", owner="alice")
    assert again is not None and again.body == {"n": 9}  # put replaces
    await database.commit(ThreadBatch().delete_record("thread", "t1", owner="alice"))
    assert await database.get_record("thread", "t1", owner="alice") is None
    assert [r.id for r in await database.list_records("run", owner="alice")] == ["r3"]  # children


async def test_a_batch_commits_whole_or_not_at_all(database: RecordDatabase) -> None:
    hi, answer = ChatMessage(Role.USER, "hi"), ChatMessage(Role.ASSISTANT, "hello")
    note = ThreadRecord(kind="note", id="n1", thread_id="t", body={"turn": 1})
    versions = await database.commit(
        ThreadBatch().append("t", [hi, answer], expected_version=0).put(note)
    )
    assert versions == {"t": 2}
    late = ThreadBatch().put(ThreadRecord(kind="note", id="n2", body={"turn": 2}))
    late.append("t", [hi], expected_version=0)  # the thread moved on: the batch fails
    with pytest.raises(ConcurrentThreadUpdateError):
        await database.commit(late)
    assert await database.get_record("note", "n2") is None
    assert _texts(await database.store("t").list_messages()) == ["hi", "hello"]
    # A fork and its first turn in one batch; a rewrite keeps the fork's history.
    branch = ThreadBatch().fork("t", "b", at=1).append("b", [answer], expected_version=1)
    assert await database.commit(branch) == {"b": 2}
    with pytest.raises(ConcurrentThreadUpdateError, match="expected version 0, found 2"):
        await database.commit(ThreadBatch().fork("t", "b", at=0))  # "b" exists already
    bye = ChatMessage(Role.USER, "bye")
    await database.commit(ThreadBatch().replace("t", [bye], expected_version=2))
    assert _texts(await database.store("t").list_messages()) == ["bye"]
    assert _texts(await database.store("b").list_messages()) == ["hi", "hello"]
    with pytest.raises(ConcurrentThreadUpdateError):
        await database.commit(ThreadBatch().replace("t", [], expected_version=5))
    await database.commit(ThreadBatch().delete_thread("t"))
    assert await database.store("t").list_messages() == []
    listed = {t.thread_id: t.version for t in await database.list_threads()}
    assert listed == {"b": 2}


async def test_bad_batches_are_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="not a valid thread id"):
        ThreadBatch().append("../etc", [])
    with pytest.raises(ValueError, match="non-empty id"):
        ThreadBatch().put(ThreadRecord(kind="note", id=""))


async def test_claims_are_held_answered_released_and_taken_over(
    database: RecordDatabase,
) -> None:
    assert await database.claim_record("claim", "k", owner="a", stale_after=300) is None
    held = await database.claim_record("claim", "k", owner="a", stale_after=300)
    assert held is not None and held.body is None  # someone holds it, unanswered
    assert await database.claim_record("claim", "k", owner="b", stale_after=300) is None
    await database.release_claim("claim", "k", owner="a")
    assert await database.claim_record("claim", "k", owner="a", stale_after=300) is None
    await database.commit(ThreadBatch().put(ThreadRecord(kind="claim", id="k", owner="a", body={})))
    await database.release_claim("claim", "k", owner="a")  # an answered claim is not released
    answered = await database.claim_record("claim", "k", owner="a", stale_after=300)
    assert answered is not None and answered.body == {}
    # A holder that died: its claim goes stale and is taken over.
    await asyncio.sleep(0.02)
    assert await database.claim_record("claim", "k", owner="b", stale_after=0.01) is None


async def test_a_staged_turn_commits_with_its_record_or_not_at_all(
    database: RecordDatabase,
) -> None:
    client = ScriptedChatClient(["one", "two", "three"])
    agent = ChatAgent(client)
    staged = StagedStore(database.store("t"))
    response = await agent.run("hi", thread=AgentThread(message_store=staged))
    assert await database.store("t").list_messages() == []  # held, not written
    assert _texts(staged.staged) == ["hi", "one"]
    record = ThreadRecord(kind="response", id="r1", thread_id="t", body={"text": response.text})
    await database.commit(staged.stage_into(ThreadBatch(), "t").put(record))
    assert _texts(await database.store("t").list_messages()) == ["hi", "one"]
    # Another writer gets there first: the staged turn and its record are refused together.
    late = StagedStore(database.store("t"))
    await agent.run("again", thread=AgentThread(message_store=late))
    await database.commit(ThreadBatch().append("t", [ChatMessage(Role.USER, "other")]))
    lost = ThreadRecord(kind="response", id="r2", thread_id="t", body={})
    with pytest.raises(ConcurrentThreadUpdateError):
        await database.commit(late.stage_into(ThreadBatch(), "t").put(lost))
    assert await database.get_record("response", "r2") is None
    # A turn for a branch: the agent sees the first message only; the fork comes with the turn.
    branch = StagedStore(database.store("t"), upto=1)
    await agent.run("branch", thread=AgentThread(message_store=branch))
    assert [m.text for m in client.calls[-1].messages] == ["hi", "branch"]
    await database.commit(branch.stage_into(ThreadBatch().fork("t", "b", at=1), "b"))
    assert _texts(await database.store("b").list_messages()) == ["hi", "branch", "three"]
    with pytest.raises(UsageError, match="uncommitted turn"):
        await late.fork()


class TurnCounter(ContextProvider):
    """Per-thread state that must survive a resume: how many turns the thread has had."""

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        state = self.state(thread)
        state["turns"] = state.get("turns", 0) + 1


async def test_a_threads_full_state_is_kept_beside_it_with_its_turn(
    database: RecordDatabase,
) -> None:
    """What the CLI needs: serialize() state (provider state included) committed with the turn."""
    agent = ChatAgent(
        ScriptedChatClient(["one", "two"]),
        context_providers=[TurnCounter()],
        chat_message_store_factory=database.store,
    )
    thread_id = "saved"
    staged = StagedStore(database.store(thread_id))
    thread = AgentThread(message_store=staged, thread_id=thread_id)
    await agent.run("first", thread=thread)
    state = await thread.serialize()
    saved = ThreadRecord(kind="thread_state", id=thread_id, thread_id=thread_id, body=state)
    await database.commit(staged.stage_into(ThreadBatch(), thread_id).put(saved))

    found = await database.get_record("thread_state", thread_id)
    assert found is not None and found.body is not None
    resumed = await agent.deserialize_thread(found.body)
    assert resumed.id == thread_id and resumed.context_state["TurnCounter"] == {"turns": 1}
    await agent.run("second", thread=resumed)
    assert resumed.context_state["TurnCounter"] == {"turns": 2}
    assert _texts(await database.store(thread_id).list_messages()) == [
        "first",
        "one",
        "second",
        "two",
    ]


async def test_a_server_file_of_the_previous_layout_keeps_its_objects(tmp_path: Path) -> None:
    """``tl_objects``/``tl_idempotency`` (the server's tables before records) move on open."""
    path = tmp_path / "server.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            "CREATE TABLE tl_objects (id TEXT, kind TEXT, owner TEXT, parent TEXT, "
            "container TEXT, upto INTEGER, body TEXT, created_at REAL);"
            "CREATE TABLE tl_idempotency (owner TEXT, key TEXT, status INTEGER, body TEXT, "
            "created_at REAL);"
            "INSERT INTO tl_objects VALUES ('resp_1', 'response', 'me', NULL, 'chain_1', 4, "
            '\'{"id": "resp_1"}\', 1.0);'
            "INSERT INTO tl_idempotency VALUES ('me', '/v1/responses:k', 200, "
            "'{\"a\": 1}', 2.0);"
        )
    database = open_database(f"sqlite:{path}")
    assert isinstance(database, SQLiteThreadDatabase)
    try:
        await database.open()
        response = await database.get_record("response", "resp_1", owner="me")
        assert response is not None and response.thread_id == "chain_1"
        assert response.body == {"id": "resp_1", "_upto": 4}
        claim = await database.get_record("idempotency", "/v1/responses:k", owner="me")
        assert claim is not None and claim.body == {"status": 200, "body": {"a": 1}}
    finally:
        await database.aclose()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert not {"tl_objects", "tl_idempotency"} & tables


async def test_a_postgres_schema_of_the_previous_layout_keeps_its_objects(
    postgres_url: str, postgres_schema: str
) -> None:
    database = PostgresThreadDatabase(postgres_url, schema=postgres_schema)
    await database.open()  # today's tables, then the old ones beside them
    await database.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(postgres_schema)))
        await conn.execute(
            "CREATE TABLE tl_objects (id TEXT, kind TEXT, owner TEXT, parent TEXT, "
            "container TEXT, upto INTEGER, body TEXT, created_at DOUBLE PRECISION)"
        )
        await conn.execute(
            "CREATE TABLE tl_idempotency (owner TEXT, key TEXT, status INTEGER, body TEXT, "
            "created_at DOUBLE PRECISION)"
        )
        await conn.execute(
            "INSERT INTO tl_objects VALUES ('conv_1', 'conversation', 'me', NULL, 'conv_1', "
            'NULL, \'{"id": "conv_1"}\', 1.0)'
        )
        await conn.execute("INSERT INTO tl_idempotency VALUES ('me', 'k', NULL, NULL, 2.0)")
    database = PostgresThreadDatabase(postgres_url, schema=postgres_schema)
    try:
        await database.open()
        found = await database.get_record("conversation", "conv_1", owner="me")
        assert found is not None and found.body == {"id": "conv_1"}
        claim = await database.get_record("idempotency", "k", owner="me")
        assert claim is not None and claim.body is None  # still only claimed
    finally:
        await database.aclose()


async def test_the_opener_knows_three_kinds_and_names_the_forms_it_takes(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    assert isinstance(open_database(f"sqlite:{tmp_path / 'a.db'}"), SQLiteThreadDatabase)
    postgres = open_database("postgresql://postgres@127.0.0.1:5432/test", schema="tl_x")
    assert isinstance(postgres, PostgresThreadDatabase) and postgres.schema == "tl_x"
    redis = open_database(redis_url, schema=redis_prefix.rstrip(":"))
    assert isinstance(redis, RedisThreadDatabase) and not isinstance(redis, RecordDatabase)
    try:
        await redis.open()
        store = redis.store("thread_r")
        await store.add_messages([ChatMessage(Role.USER, "kept in Redis")])
        assert [(t.thread_id, t.version) for t in await redis.list_threads()] == [("thread_r", 1)]
    finally:
        await redis.aclose()
    for spec, match in (("sqlite:", "needs a file"), ("mysql://x", "sqlite:PATH, postgresql")):
        with pytest.raises(UsageError, match=match):
            open_database(spec)
