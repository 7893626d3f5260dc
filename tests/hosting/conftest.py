"""A threadline server on a free loopback port, in the test's event loop, for the official SDK."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import openai
import pytest
import uvicorn

from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig, create_app
from threadline.threads.stores.database import ThreadDatabase
from threadline.threads.stores.postgres_database import PostgresThreadDatabase

P = TypeVar("P", bound=PostgresThreadDatabase)

KEYS = {"key-alice": "alice", "key-bob": "bob"}
ROOT = Path(__file__).resolve().parents[2]
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
    agent: ChatAgent, config: ServerConfig, *, store: str | ThreadDatabase | None = None
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(agent, config, store=store), log_level="warning", lifespan="on")
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
    database: PostgresThreadDatabase | None = None
    if request.param == "postgres":
        database = await postgres_database("tl_api_" + os.urandom(4).hex())
    uv, task, url = await start_server(agent, config, store=database)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task
        if database is not None:
            await drop_schema(database.schema)


async def postgres_database(schema: str, *, migrate: bool = False) -> PostgresThreadDatabase:
    """A thread database in a schema of its own, opened; skips (or fails in CI) without a server."""
    return await opened_or_skip(
        PostgresThreadDatabase(POSTGRES_URL, schema=schema, max_connections=4, migrate=migrate)
    )


async def opened_or_skip(database: P) -> P:
    """``database`` (any PostgreSQL thread database, a test's subclass too), opened; skips (or
    fails in CI) without a server."""
    try:
        await database.open()
    except Exception as exc:
        await database.aclose()
        if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return database


async def drop_schema(schema: str) -> None:
    """Drop a test's schema with everything in it."""
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_serving(
    proc: asyncio.subprocess.Process, url: str, api_key: str, seconds: float = 120.0
) -> None:
    """Return once the server at ``url`` answers; fail at once if ``proc`` exits.

    Starting a server process takes many seconds on a loaded machine, so the wait is long, but a
    server that died is reported with its stderr (when piped) instead of waited for.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    async with openai.AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0) as client:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                err = (await proc.stderr.read()).decode() if proc.stderr else ""
                pytest.fail(f"`threadline serve` exited with {proc.returncode}: {err}")
            try:
                await client.models.list()
                return
            except openai.APIConnectionError:
                await asyncio.sleep(0.1)
    proc.kill()
    await proc.wait()
    pytest.fail(f"`threadline serve` did not answer within {seconds} s")


async def serve_process(
    agent: str,
    *args: str,
    env: dict[str, str],
    stdout: int = subprocess.DEVNULL,
    stderr: int = subprocess.PIPE,
    key: str = "key-alice",
    user: str = "alice",
) -> tuple[asyncio.subprocess.Process, str]:
    """``threadline serve AGENT ARGS`` as a subprocess with API key ``key`` (for ``user``), once
    it answers. ``stderr`` is piped so a server that dies says why; a server killed again and
    again under load (the crash tests) passes ``DEVNULL``, since nobody drains the pipe."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "threadline.cli.main", "serve", agent, *args,
        "--port", str(port), "--api-key", f"{key}={user}", "--log-level", "warning",
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env},
        stdout=stdout, stderr=stderr,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    await wait_serving(proc, url, key)
    return proc, url
