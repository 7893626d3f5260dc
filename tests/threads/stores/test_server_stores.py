"""Redis and PostgreSQL stores beyond the conformance kit: agents, restore, secrets, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from threadline import ChatAgent, ScriptedChatClient
from threadline.exceptions import MessageFormatError, StoreError, ThreadStateError
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.stores.postgres import PostgresChatMessageStore
from threadline.threads.stores.redis import RedisChatMessageStore
from threadline.threads.stores.registry import register_store_kind
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types.contents import FunctionResultContent
from threadline.types.messages import ChatMessage, Role


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)  # pyright: ignore[reportUnknownMemberType]
    yield client
    await client.aclose()


@pytest.fixture
async def pg_pool(postgres_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = AsyncConnectionPool(postgres_url, open=False, kwargs={"autocommit": True})
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture(params=["redis", "postgres"])
def make_store(
    request: pytest.FixtureRequest,
) -> Callable[[], ChatMessageStore]:
    """A store factory sharing one connection (pool), as a server would configure an agent."""
    if request.param == "redis":
        client: aioredis.Redis = request.getfixturevalue("redis_client")
        prefix: str = request.getfixturevalue("redis_prefix")
        return lambda: RedisChatMessageStore(client=client, key_prefix=prefix)
    pool: AsyncConnectionPool[Any] = request.getfixturevalue("pg_pool")
    schema: str = request.getfixturevalue("postgres_schema")
    return lambda: PostgresChatMessageStore(pool=pool, schema=schema)


async def test_agent_threads_round_trip_through_serialize(
    make_store: Callable[[], ChatMessageStore],
) -> None:
    client = ScriptedChatClient(["hello Alice", "you are Alice"])
    agent = ChatAgent(client, chat_message_store_factory=make_store)
    thread = agent.get_new_thread()
    await agent.run("I am Alice", thread=thread)
    state = json.loads(json.dumps(await thread.serialize()))
    store_state = state["store"]["state"]
    assert store_state["thread_id"] and set(store_state) <= {"thread_id", "key_prefix", "schema"}
    restored = await agent.deserialize_thread(state)
    await agent.run("who am I?", thread=restored)
    assert [m.text for m in client.calls[1].messages] == ["I am Alice", "hello Alice", "who am I?"]
    assert restored.message_store is not None
    texts = [m.text for m in await restored.message_store.list_messages()]
    assert texts == ["I am Alice", "hello Alice", "who am I?", "you are Alice"]
    client.assert_all_replies_used()


async def test_restore_without_factory_says_how_to_configure(
    make_store: Callable[[], ChatMessageStore],
) -> None:
    store = make_store()
    await store.add_messages([ChatMessage(Role.USER, "hi")])
    agent = ChatAgent(ScriptedChatClient(["ok"]), chat_message_store_factory=make_store)
    thread = agent.get_new_thread()
    thread.message_store = store
    state = await thread.serialize()
    bare = ChatAgent(ScriptedChatClient([]))
    with pytest.raises(ThreadStateError, match="chat_message_store_factory=lambda"):
        await bare.deserialize_thread(state)
    kind = store_kind(store)
    assert kind == json.loads(json.dumps(state))["store"]["kind"]

    def build(_: Mapping[str, Any]) -> ChatMessageStore:
        return make_store()

    register_store_kind(kind, build)
    try:
        restored = await bare.deserialize_thread(state)
    finally:
        register_store_kind(kind, None)
    assert restored.message_store is not None
    assert [m.text for m in await restored.message_store.list_messages()] == ["hi"]


async def test_unstorable_message_is_refused_and_nothing_written(
    make_store: Callable[[], ChatMessageStore], tmp_path: Path
) -> None:
    bad = ChatMessage(
        Role.TOOL,
        contents=[FunctionResultContent(call_id="c", result=object())],  # pyright: ignore[reportArgumentType]
    )
    for store in (make_store(), SQLiteChatMessageStore(tmp_path / "t.db")):
        await store.add_messages([ChatMessage(Role.USER, "kept")])
        with pytest.raises(MessageFormatError, match="cannot be stored"):
            await store.add_messages([ChatMessage(Role.USER, "fine"), bad])
        assert [m.text for m in await store.list_messages()] == ["kept"]


async def test_load_state_refuses_another_namespace(
    make_store: Callable[[], ChatMessageStore],
) -> None:
    store = make_store()
    state = dict(await store.serialize())
    key = "key_prefix" if "key_prefix" in state else "schema"
    state[key] = "elsewhere"
    with pytest.raises(ThreadStateError, match="elsewhere"):
        await make_store().load_state(state)
    with pytest.raises(ThreadStateError, match="thread_id"):
        await make_store().load_state({})


async def test_redis_password_never_leaks() -> None:
    url = f"redis://alice:s3cret-pw@127.0.0.1:{_closed_port()}/0"
    async with RedisChatMessageStore(url=url) as store:
        assert "s3cret" not in json.dumps(await store.serialize())
        assert "s3cret" not in repr(store)
        with pytest.raises(StoreError) as info:
            await store.add_messages([ChatMessage(Role.USER, "hi")])
    assert "s3cret" not in str(info.value)
    assert "redis://alice@127.0.0.1" in str(info.value)


async def test_postgres_password_never_leaks() -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{_closed_port()}/test"
    async with PostgresChatMessageStore(dsn=dsn, connect_timeout=0.5) as store:
        assert "s3cret" not in json.dumps(await store.serialize())
        assert "s3cret" not in repr(store)
        with pytest.raises(StoreError) as info:
            await store.list_messages()
    assert "s3cret" not in str(info.value)
    assert "postgresql://postgres@127.0.0.1" in str(info.value)


async def test_redis_client_must_return_bytes(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)  # pyright: ignore[reportUnknownMemberType]
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisChatMessageStore(client=client)
    finally:
        await client.aclose()


def test_exactly_one_connection_argument() -> None:
    with pytest.raises(ValueError, match="exactly one of url= or client="):
        RedisChatMessageStore()
    with pytest.raises(ValueError, match="exactly one of dsn= or pool="):
        PostgresChatMessageStore()


async def test_postgres_setup_is_safe_from_many_pools_at_once(postgres_url: str) -> None:
    schema = f"threadline_test_{uuid.uuid4().hex[:12]}"
    stores = [PostgresChatMessageStore(dsn=postgres_url, schema=schema) for _ in range(4)]
    try:
        await asyncio.gather(*(s.setup() for s in stores))
        await asyncio.gather(*(s.add_messages([ChatMessage(Role.USER, "x")]) for s in stores))
        assert [len(await s.list_messages()) for s in stores] == [1, 1, 1, 1]
    finally:
        for s in stores:
            await s.aclose()
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


async def test_forks_share_and_release_one_connection(redis_url: str, redis_prefix: str) -> None:
    store = RedisChatMessageStore(url=redis_url, key_prefix=redis_prefix)
    await store.add_messages([ChatMessage(Role.USER, "a")])
    fork = await store.fork()
    await store.aclose()
    assert [m.text for m in await fork.list_messages()] == ["a"]  # still usable
    await fork.aclose()
