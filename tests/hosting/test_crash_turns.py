"""A real ``threadline serve --store sqlite:PATH`` (and ``postgresql://``) SIGKILLed during turns.

Every acknowledged turn must survive whole and once; the turn in flight at the kill is either
whole (with its response object and its ``Idempotency-Key`` answer, so a retry replays it) or
absent (a retry runs it); never a turn without its response, a half turn, or a turn stored twice.
The conversations are threads of the file: ``threadline threads`` lists and shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, cast

import openai
import psycopg
import pytest
from psycopg import sql

from tests.hosting.conftest import drop_schema, postgres_database
from threadline import ChatMessage, SQLiteChatMessageStore
from threadline.cli.main import main
from threadline.threads.stores.postgres import PostgresChatMessageStore

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
KEY = "crash-key"
ROUNDS = 3
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class _Backend:
    """Where the server under test keeps its state, and how the test reads it back directly."""

    store_args: list[str]
    sqlite: Path | None = None
    schema: str = ""

    async def row(self, query: str, args: tuple[str, ...]) -> tuple[Any, ...] | None:
        if self.sqlite is not None:
            with contextlib.closing(sqlite3.connect(self.sqlite)) as conn:
                return conn.execute(query.replace("%s", "?"), args).fetchone()
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            cur = await conn.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema))
            )
            cur = await conn.execute(cast(LiteralString, query), args)
            return await cur.fetchone()

    async def messages(self, thread_id: str) -> list[ChatMessage]:
        store: SQLiteChatMessageStore | PostgresChatMessageStore
        if self.sqlite is not None:
            store = SQLiteChatMessageStore(self.sqlite, thread_id)
        else:
            store = PostgresChatMessageStore(
                dsn=POSTGRES_URL, thread_id=thread_id, schema=self.schema
            )
        async with store:
            return await store.list_messages()


async def _start(backend: _Backend) -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",
        "serve",
        "tests.hosting._cli_agent:endless",
        *backend.store_args,
        "--port",
        str(port),
        "--api-key",
        f"{KEY}=me",
        "--log-level",
        "warning",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
        for _ in range(300):
            if proc.returncode is not None:
                pytest.fail(f"`threadline serve` exited with {proc.returncode}")
            try:
                await client.models.list()
                return proc, url
            except openai.APIConnectionError:
                await asyncio.sleep(0.1)
    proc.kill()
    pytest.fail("`threadline serve` did not answer")


@dataclass
class _Worker:
    name: str
    conversation: str | None  # a conversation's turns, or a previous_response_id chain
    acked: list[str] = field(default_factory=lambda: [])  # response ids, in order
    sent: int = 0  # turns sent (the last one may be unacknowledged)

    def body(self, i: int) -> str:
        return f"{self.name}:{i}"


async def _drive(client: openai.AsyncOpenAI, worker: _Worker) -> None:
    while True:
        i = worker.sent
        worker.sent += 1
        headers = {"Idempotency-Key": worker.body(i)}
        if worker.conversation is not None:
            response = await client.responses.create(
                input=worker.body(i), conversation=worker.conversation, extra_headers=headers
            )
        else:
            previous = worker.acked[-1] if worker.acked else None
            response = await client.responses.create(
                input=worker.body(i), previous_response_id=previous, extra_headers=headers
            )
        worker.acked.append(response.id)


async def _claim(backend: _Backend, key: str) -> tuple[int | None, str | None] | None:
    """The ``Idempotency-Key`` record: (status, answer JSON), (None, None) while only claimed."""
    row = await backend.row(
        "SELECT body FROM threadline_records WHERE kind = 'idempotency' AND id = %s",
        (f"/v1/responses:{key}",),
    )
    if row is None:
        return None
    if row[0] is None:
        return None, None
    answer = json.loads(row[0])
    return answer["status"], json.dumps(answer["body"])


async def _history(client: openai.AsyncOpenAI, worker: _Worker, backend: _Backend) -> list[str]:
    """The worker's user turns as stored, checked to be whole (each answered by one "pong")."""
    if worker.conversation is not None:
        messages = await backend.messages(worker.conversation)
    else:
        last = await client.responses.retrieve(worker.acked[-1]) if worker.acked else None
        if last is None:
            return []
        row = await backend.row(
            "SELECT thread_id FROM threadline_records WHERE kind = 'response' AND id = %s",
            (last.id,),
        )
        assert row is not None
        messages = await backend.messages(row[0])
    texts = [m.text for m in messages]
    assert texts[1::2] == ["pong"] * (len(texts) // 2) and len(texts) % 2 == 0, texts
    return texts[0::2]


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[_Backend]:
    if request.param == "sqlite":
        db = tmp_path / "home" / "threads.db"
        yield _Backend(["--store", f"sqlite:{db}"], sqlite=db)
        return
    schema = "tl_crash_" + os.urandom(4).hex()
    probe = await postgres_database(schema)  # the schema exists before the server starts
    await probe.aclose()
    try:
        yield _Backend(["--store", POSTGRES_URL, "--postgres-schema", schema], schema=schema)
    finally:
        await drop_schema(schema)


async def test_sigkill_during_turns_loses_no_acknowledged_turn_and_duplicates_none(
    backend: _Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(7)
    conversations: list[str] = []
    for round_no in range(ROUNDS):
        proc, url = await _start(backend)
        async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
            workers: list[_Worker] = []
            for w in range(WORKERS):
                conversation = None
                if w % 2 == 0:
                    conversation = (await client.conversations.create()).id
                    conversations.append(conversation)
                workers.append(_Worker(f"r{round_no}w{w}", conversation))
            tasks = [asyncio.create_task(_drive(client, w)) for w in workers]
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert all(w.acked for w in workers), "no turn was acknowledged before the kill"

        proc, url = await _start(backend)
        try:
            async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
                for worker in workers:
                    stored = await _history(client, worker, backend)
                    acked = [worker.body(i) for i in range(len(worker.acked))]
                    # Every acknowledged turn, in order, once; at most the one in flight beyond.
                    assert stored[: len(acked)] == acked, (worker.name, stored)
                    assert len(stored) <= len(acked) + 1, (worker.name, stored)
                    for response_id in worker.acked:
                        assert (await client.responses.retrieve(response_id)).status == "completed"
                    in_flight = len(acked)
                    claim = await _claim(backend, worker.body(in_flight))
                    if len(stored) == len(acked):  # the turn in flight left nothing but a claim
                        assert claim is None or claim[0] is None, (worker.name, claim)
                        continue
                    # Committed before its answer went out: stored with its answer, which a
                    # retry with the same key replays instead of running the turn again.
                    assert claim is not None and claim[0] == 200, (worker.name, claim)
                    response_id = json.loads(claim[1] or "{}")["_threadline_response"]["id"]
                    headers = {"Idempotency-Key": worker.body(in_flight)}
                    if worker.conversation is not None:
                        retry = await client.responses.create(
                            input=worker.body(in_flight),
                            conversation=worker.conversation,
                            extra_headers=headers,
                        )
                    else:
                        previous = worker.acked[-1]
                        retry = await client.responses.create(
                            input=worker.body(in_flight),
                            previous_response_id=previous,
                            extra_headers=headers,
                        )
                    assert retry.id == response_id
                    assert await _history(client, worker, backend) == stored
        finally:
            proc.terminate()
            await proc.wait()

    if backend.sqlite is None:
        return
    # The server's conversations are threads of the file: `threadline threads` reads them.
    home = backend.sqlite.parent
    capsys.readouterr()
    # (In a thread: the command runs its own event loop.)
    assert await asyncio.to_thread(main, ["--home", str(home), "threads", "list", "--json"]) == 0
    listed = {json.loads(line)["thread_id"] for line in capsys.readouterr().out.splitlines()}
    assert set(conversations) <= listed
    assert (
        await asyncio.to_thread(main, ["--home", str(home), "threads", "show", conversations[0]])
        == 0
    )
    assert "pong" in capsys.readouterr().out
