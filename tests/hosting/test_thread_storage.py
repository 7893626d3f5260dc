"""EXPERIMENTAL (item 10): the server's conversations as threads of a ``ChatMessageStore``.

The ``server`` fixture already runs every API test on SQLite threads; here, Redis threads, and
what keeping them as threads is for: any program holding the store reads a server conversation.
"""

from __future__ import annotations

# pyright: reportDeprecated=false
from pathlib import Path

import openai
import pytest

from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, ScriptedChatClient, SQLiteChatMessageStore
from threadline.hosting import ServerConfig
from threadline.hosting.serve import open_thread_store

# The SDK marks the Assistants API deprecated and warns on every call; the API is what we test.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_a_server_conversation_is_a_thread_of_the_sqlite_store(tmp_path: Path) -> None:
    db = str(tmp_path / "server.db")
    model = ScriptedChatClient(["noted", "branched"])
    storage = open_thread_store(f"sqlite:{db}")
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS), storage=storage
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create()
            first = await client.responses.create(input="I like tea", conversation=conversation.id)
            await client.responses.create(input="branch", previous_response_id=first.id)
    finally:
        uv.should_exit = True
        await task
    thread = SQLiteChatMessageStore(db, conversation.id)
    assert [m.text for m in await thread.list_messages()] == ["I like tea", "noted"]


async def test_redis_threads_carry_conversations_chains_and_runs(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    model = ScriptedChatClient(["one", "two", "three", "from the run"])
    storage = open_thread_store(
        redis_url, objects_path=str(tmp_path / "objects.db"), key_prefix=redis_prefix
    )
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS), storage=storage
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create(
                items=[{"type": "message", "role": "user", "content": "seed"}]
            )
            r1 = await client.responses.create(input="first", conversation=conversation.id)
            r2 = await client.responses.create(input="second", previous_response_id=r1.id)
            await client.responses.create(input="third", previous_response_id=r2.id)
            assert [m.text for m in model.calls[2].messages] == [
                "seed",
                "first",
                "one",
                "second",
                "two",
                "third",
            ]
            assert len((await client.conversations.items.list(conversation.id)).data) == 3
            assistant = await client.beta.assistants.create(model="m")
            thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
            run = await client.beta.threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id=assistant.id
            )
            assert run.status == "completed"
            await client.conversations.delete(conversation.id)
            assert await storage.items(conversation.id) == []
    finally:
        uv.should_exit = True
        await task


async def test_postgres_threads_share_one_pool(postgres_url: str, postgres_schema: str) -> None:
    model = ScriptedChatClient(["one", "two"])
    storage = open_thread_store(postgres_url, schema=postgres_schema)
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS), storage=storage
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create()
            first = await client.responses.create(input="first", conversation=conversation.id)
            await client.responses.create(input="second", previous_response_id=first.id)
            assert [m.text for m in model.calls[1].messages] == ["first", "one", "second"]
            assert len((await client.conversations.items.list(conversation.id)).data) == 2
    finally:
        uv.should_exit = True
        await task
