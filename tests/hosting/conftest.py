"""A threadline server on a free loopback port, in the test's event loop, for the official SDK."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import uvicorn

from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig, create_app
from threadline.hosting.storage import ServerStorage
from threadline.hosting.storage.postgres import PostgresServerStorage

KEYS = {"key-alice": "alice", "key-bob": "bob"}
POSTGRES_URL = os.environ.get(
    "THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class Server:
    url: str
    model: ScriptedChatClient
    config: ServerConfig

    def client(self, key: str = "key-alice", **kwargs: object) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url, api_key=key, **kwargs)  # pyright: ignore[reportArgumentType]


async def start_server(
    agent: ChatAgent, config: ServerConfig, *, storage: ServerStorage | None = None
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(agent, config, storage=storage), log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(params=["sqlite", "postgres"])
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """The server on each storage (conversations as threads): one SQLite file, and PostgreSQL
    (a fresh schema per test, dropped after; needs the server at ``THREADLINE_POSTGRES_URL``)."""
    model = ScriptedChatClient([])
    agent = ChatAgent(model, "You are a test agent.")
    db = str(tmp_path / "server.db")
    config = ServerConfig(api_keys=KEYS, db_path=db, max_body_bytes=64_000)
    storage: PostgresServerStorage | None = None
    if request.param == "postgres":
        storage = PostgresServerStorage(
            POSTGRES_URL, schema="tl_api_" + os.urandom(4).hex(), max_size=4
        )
        try:
            await storage.items("probe")
        except Exception as exc:
            await storage.close()
            if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
                raise
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    uv, task, url = await start_server(agent, config, storage=storage)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task
        if storage is not None:
            cleanup = PostgresServerStorage(POSTGRES_URL, schema=storage.schema, max_size=1)
            await cleanup.drop_schema()
            await cleanup.close()
