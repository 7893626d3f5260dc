"""Drive a real ``threadline serve`` that gets SIGKILLed: its state, its clients, its records.

Shared by ``test_crash_turns.py`` (a few rounds, in CI) and ``bench/server_kill.py`` (many
cycles, both stores, as a benchmark), so both check acknowledged turns the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, cast

import openai
import psycopg
from psycopg import sql

from tests.hosting.conftest import serve_process
from threadline import ChatMessage, SQLiteChatMessageStore
from threadline.threads.stores.postgres import PostgresChatMessageStore

__all__ = [
    "KEY",
    "POSTGRES_URL",
    "Backend",
    "Worker",
    "drive",
    "idempotency_claim",
    "start",
    "stored_turns",
]

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
KEY = "crash-key"


@dataclass
class Backend:
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


async def start(backend: Backend) -> tuple[asyncio.subprocess.Process, str]:
    """``threadline serve`` of an endless agent on ``backend``, once it answers; its /v1 URL."""
    return await serve_process(
        "tests.hosting._cli_agent:endless",
        *backend.store_args,
        env={},
        stderr=subprocess.DEVNULL,
        key=KEY,
        user="me",
    )


@dataclass
class Worker:
    name: str
    conversation: str | None  # a conversation's turns, or a previous_response_id chain
    acked: list[str] = field(default_factory=lambda: [])  # response ids, in order
    sent: int = 0  # turns sent (the last one may be unacknowledged)

    def body(self, i: int) -> str:
        return f"{self.name}:{i}"


async def drive(client: openai.AsyncOpenAI, worker: Worker) -> None:
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


async def idempotency_claim(backend: Backend, key: str) -> tuple[int | None, str | None] | None:
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


async def stored_turns(client: openai.AsyncOpenAI, worker: Worker, backend: Backend) -> list[str]:
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
