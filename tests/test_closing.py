"""One way to close: clients and stores share ``aclose()`` / ``async with``; agents use it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    ChatResponse,
    ChatResponseUpdate,
    PostgresChatMessageStore,
    RedisChatMessageStore,
    Role,
    ScriptedChatClient,
    SQLiteChatMessageStore,
    StoreError,
    SupportsAclose,
)
from threadline.clients.base import ChatOptions
from threadline.clients.local import LocalChatClient
from threadline.clients.openai_chat import OpenAIChatClient
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase


def sqlite_workers() -> int:
    return sum(t.name.startswith("threadline-sqlite") for t in threading.enumerate())


def test_every_client_and_store_that_holds_a_resource_speaks_the_protocol() -> None:
    for cls in (
        SQLiteChatMessageStore,
        RedisChatMessageStore,
        PostgresChatMessageStore,
        LocalChatClient,
        OpenAIChatClient,
    ):
        assert issubclass(cls, SupportsAclose), cls
        assert hasattr(cls, "__aenter__") and hasattr(cls, "__aexit__"), cls


async def test_sqlite_stores_close_their_worker_thread(tmp_path: Path) -> None:
    before = sqlite_workers()
    path = tmp_path / "threads.db"
    async with SQLiteChatMessageStore(path, thread_id="a") as first:
        await first.add_messages([ChatMessage(Role.USER, "hi")])
        second = SQLiteChatMessageStore(path, thread_id="b")
        await second.add_messages([ChatMessage(Role.USER, "yo")])
        assert sqlite_workers() == before + 1  # one worker per file, shared
    # The other store of the file still works: the worker lives while a store holds it.
    assert [m.text for m in await second.list_messages()] == ["yo"]
    await second.aclose()
    await second.aclose()  # closing twice is harmless
    assert sqlite_workers() == before

    with pytest.raises(StoreError, match="was closed; open a new store"):
        await first.list_messages()
    # A new store of the file starts a new worker and finds everything stored.
    async with SQLiteChatMessageStore(path, thread_id="a") as again:
        assert [m.text for m in await again.list_messages()] == ["hi"]
        database = SQLiteThreadDatabase(path)
        listed = await database.list_threads()
        await database.aclose()
        assert sorted(t.thread_id for t in listed) == ["a", "b"]
    assert sqlite_workers() == before


async def test_a_closed_thread_database_leaves_no_worker_behind(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    async with SQLiteChatMessageStore(path, thread_id="a") as store:
        await store.add_messages([ChatMessage(Role.USER, "hi")])
    before = sqlite_workers()
    database = SQLiteThreadDatabase(path)
    assert [t.thread_id for t in await database.list_threads()] == ["a"]
    await database.aclose()
    assert sqlite_workers() == before


class ClosableClient:
    """A client that holds a resource and records being closed."""

    service_name = "closable"
    stores_history = False

    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, "ok"),))

    def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        raise NotImplementedError


async def test_an_agents_async_with_closes_its_client_through_aclose() -> None:
    client = ClosableClient()
    async with ChatAgent(client) as agent:
        assert (await agent.run("hi")).text == "ok"
    assert client.closed == 1
    # A client that holds nothing (no aclose) is simply left alone.
    async with ChatAgent(ScriptedChatClient(["ok"])) as agent:
        await agent.run("hi")


async def test_an_openai_client_closes_the_http_client_it_made() -> None:
    # No request is made: the client is built for a loopback address and closed.
    client = OpenAIChatClient(base_url="http://127.0.0.1:9/v1", api_key="unused", model="m")
    async with ChatAgent(client):
        pass
    assert client.client.is_closed()
