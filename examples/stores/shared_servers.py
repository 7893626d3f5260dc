"""Threads shared by many processes through Redis or PostgreSQL.

One connection (pool) serves every thread; the store factory carries it, so a serialized thread
holds no URL or password and restores against whatever connection the restoring process has.
Needs a Redis at THREADLINE_REDIS_URL and a PostgreSQL at THREADLINE_POSTGRES_URL (defaults:
``redis://127.0.0.1:6379/0``, ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from threadline import (
    ChatAgent,
    ChatMessageStore,
    PostgresChatMessageStore,
    RedisChatMessageStore,
    ScriptedChatClient,
)


async def conversation(name: str, factory: Callable[[], ChatMessageStore]) -> None:
    agent = ChatAgent(
        ScriptedChatClient(["Hi Alice!", "You are Alice."]), chat_message_store_factory=factory
    )
    thread = agent.get_new_thread()
    await agent.run("I am Alice.", thread=thread)
    saved = json.dumps(await thread.serialize())  # e.g. into a session cookie or a database
    print(f"{name}: saved store state {json.loads(saved)['store']}")

    # Later, perhaps in another process or on another host:
    resumed = await agent.deserialize_thread(json.loads(saved))
    reply = await agent.run("Who am I?", thread=resumed)
    print(f"{name}: Agent: {reply.text}")

    store = resumed.message_store
    assert store is not None
    newest = await store.list_messages(max_tokens=15)  # read without loading the whole thread
    print(f"{name}: newest within 15 tokens: {[m.text for m in newest]}")
    branch = await store.fork()  # a parent pointer, no copy
    print(f"{name}: fork holds {len(await branch.list_messages())} messages")
    await branch.delete()
    await store.delete()


async def main() -> None:
    namespace = f"example-{uuid.uuid4().hex[:8]}"

    url = os.environ.get("THREADLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.Redis.from_url(url)  # pyright: ignore[reportUnknownMemberType]
    try:
        await conversation(
            "redis", lambda: RedisChatMessageStore(client=client, key_prefix=f"{namespace}:")
        )
    finally:
        await client.aclose()

    dsn = os.environ.get("THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = namespace.replace("-", "_")
    async with AsyncConnectionPool(dsn, open=False, kwargs={"autocommit": True}) as pool:
        await conversation("postgres", lambda: PostgresChatMessageStore(pool=pool, schema=schema))
        async with pool.connection() as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    asyncio.run(main())
