"""A real ``threadline serve --store sqlite:PATH`` (and ``postgresql://``) SIGKILLed during turns.

Every acknowledged turn must survive whole and once; the turn in flight at the kill is either
whole (with its response object and its ``Idempotency-Key`` answer, so a retry replays it) or
absent (a retry runs it); never a turn without its response, a half turn, or a turn stored twice.
The conversations are threads of the file: ``threadline threads`` lists and shows them. The
harness (``crash_harness``) is shared with ``bench/server_kill.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.hosting.conftest import drop_schema, postgres_database
from tests.hosting.crash_harness import (
    KEY,
    POSTGRES_URL,
    Backend,
    Worker,
    drive,
    idempotency_claim,
    start,
    stored_turns,
)
from threadline.cli.main import main

ROUNDS = 3
WORKERS = 4


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        db = tmp_path / "home" / "threads.db"
        yield Backend(["--store", f"sqlite:{db}"], sqlite=db)
        return
    schema = "tl_crash_" + os.urandom(4).hex()
    probe = await postgres_database(schema)  # the schema exists before the server starts
    await probe.aclose()
    try:
        yield Backend(["--store", POSTGRES_URL, "--postgres-schema", schema], schema=schema)
    finally:
        await drop_schema(schema)


async def test_sigkill_during_turns_loses_no_acknowledged_turn_and_duplicates_none(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(7)
    conversations: list[str] = []
    for round_no in range(ROUNDS):
        proc, url = await start(backend)
        async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
            workers: list[Worker] = []
            for w in range(WORKERS):
                conversation = None
                if w % 2 == 0:
                    conversation = (await client.conversations.create()).id
                    conversations.append(conversation)
                workers.append(Worker(f"r{round_no}w{w}", conversation))
            tasks = [asyncio.create_task(drive(client, w)) for w in workers]
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert all(w.acked for w in workers), "no turn was acknowledged before the kill"

        proc, url = await start(backend)
        try:
            async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
                for worker in workers:
                    stored = await stored_turns(client, worker, backend)
                    acked = [worker.body(i) for i in range(len(worker.acked))]
                    # Every acknowledged turn, in order, once; at most the one in flight beyond.
                    assert stored[: len(acked)] == acked, (worker.name, stored)
                    assert len(stored) <= len(acked) + 1, (worker.name, stored)
                    for response_id in worker.acked:
                        assert (await client.responses.retrieve(response_id)).status == "completed"
                    in_flight = len(acked)
                    claim = await idempotency_claim(backend, worker.body(in_flight))
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
                    assert await stored_turns(client, worker, backend) == stored
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
