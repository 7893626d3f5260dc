"""A threadline server on a free loopback port, in the test's event loop, for the official SDK."""

from __future__ import annotations

import asyncio
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

KEYS = {"key-alice": "alice", "key-bob": "bob"}


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


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """The server on its default storage: conversations as threads of one SQLite file."""
    model = ScriptedChatClient([])
    agent = ChatAgent(model, "You are a test agent.")
    db = str(tmp_path / "server.db")
    config = ServerConfig(api_keys=KEYS, db_path=db, max_body_bytes=64_000)
    uv, task, url = await start_server(agent, config)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task
