"""A real ``threadline serve`` SIGKILLed while an approved call runs: the chain goes on.

Issue 18: an answer claims its approval request, runs the call, then stores the turn. A server
killed in between leaves a claim that never finishes. Once it is older than
``--approval-doubt-seconds`` the next answer takes it over: the call is *not* run again (it may
have run), its result is stored as the library's "outcome unknown", and the turn goes on with the
model, so the chain or conversation accepts input again. Driven by the official ``openai`` SDK
against a server subprocess, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from tests.hosting.conftest import POSTGRES_URL, drop_schema, postgres_database, serve_process
from threadline import FunctionResultContent
from threadline.agents import IN_DOUBT
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

ROOT = Path(__file__).resolve().parents[2]
DOUBT_SECONDS = 1.0
"""The in-doubt bound the servers run with (300 s by default)."""


@dataclass
class Setup:
    tmp_path: Path
    store: str
    schema: str
    database: RecordDatabase
    """The server's database, opened by the test to read what the servers stored."""

    @property
    def ran(self) -> list[str]:
        """One line per time the tool started, across both server processes."""
        path = self.tmp_path / "ran"
        return path.read_text().splitlines() if path.exists() else []

    async def serve(self, phase: str) -> tuple[asyncio.subprocess.Process, str]:
        return await serve_process(
            "tests.hosting._cli_agent:approver",
            "--store",
            self.store,
            "--postgres-schema",
            self.schema,
            "--approval-doubt-seconds",
            str(DOUBT_SECONDS),
            env={
                "TL_TEST_PHASE": phase,
                "TL_TEST_TOOL_DIR": str(self.tmp_path),
                "THREADLINE_HOME": str(self.tmp_path / "home"),
            },
        )


@pytest.fixture(params=["sqlite", "postgres"])
async def setup(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    if request.param == "postgres":
        schema = "tl_doubt_" + os.urandom(4).hex()
        database: RecordDatabase = await postgres_database(schema)
        store = POSTGRES_URL
    else:
        schema = "threadline"
        store = f"sqlite:{tmp_path / 'server.db'}"
        database = SQLiteThreadDatabase(tmp_path / "server.db")
        await database.open()
    try:
        yield Setup(tmp_path=tmp_path, store=store, schema=schema, database=database)
    finally:
        await database.aclose()
        if request.param == "postgres":
            await drop_schema(schema)


def _answer(request_id: str) -> list[Any]:
    return [{"type": "mcp_approval_response", "approval_request_id": request_id, "approve": True}]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


@dataclass
class Place:
    """Where the turns go: a chain (by ``previous_response_id``) or a conversation."""

    conversation: str | None = None
    previous: str | None = None

    async def create(self, client: openai.AsyncOpenAI, given: str | list[Any]) -> Response:
        return await client.responses.create(
            input=given,
            conversation=self.conversation or openai.omit,
            previous_response_id=self.previous or openai.omit,
        )


@pytest.mark.parametrize("where", ["chain", "conversation"])
async def test_an_answer_after_a_server_killed_mid_call_records_the_outcome_unknown(
    setup: Setup, where: str
) -> None:
    proc, url = await setup.serve("ask")
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice", max_retries=0) as client:
            place = Place()
            if where == "conversation":
                place.conversation = (await client.conversations.create()).id
            first = await place.create(client, "Mail bob.")
            (item,) = [i for i in first.output if i.type == "mcp_approval_request"]
            if where == "chain":
                place.previous = first.id
            answering = asyncio.ensure_future(place.create(client, _answer(item.id)))
            async with asyncio.timeout(30):  # the claim is made and the call is running
                while not setup.ran:  # noqa: ASYNC110 - the tool runs in another process
                    await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            with pytest.raises(openai.APIConnectionError):
                await answering
    finally:
        await _stop(proc)
    assert setup.ran == ["bob"]
    # Were the call run again, it would not block: it would count itself and return.
    (setup.tmp_path / "release").touch()

    proc, url = await setup.serve("after")
    try:
        await asyncio.sleep(max(0.0, DOUBT_SECONDS + 0.2 - (time.monotonic() - killed)))
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice", max_retries=0) as client:
            taken = await place.create(client, _answer(item.id))
            assert taken.status == "completed"
            assert taken.output_text == "I cannot tell whether it went."
            found = await setup.database.get_record("response", taken.id, owner="alice")
            assert found is not None and found.thread_id is not None
            stored = await setup.database.store(found.thread_id).list_messages()
            results = [c for m in stored for c in m.contents if type(c) is FunctionResultContent]
            assert [(r.call_id, r.exception) for r in results] == [("c1", IN_DOUBT)]
            if where == "chain":
                place.previous = taken.id
            after = await place.create(client, "Thanks.")
            assert after.output_text == "Noted."
    finally:
        await _stop(proc)
    assert setup.ran == ["bob"]
