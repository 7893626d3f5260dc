"""A real ``threadline serve --store sqlite:PATH`` killed with SIGKILL during a stream of turns.

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
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from threadline import SQLiteChatMessageStore
from threadline.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
KEY = "crash-key"
ROUNDS = 3
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _start(db: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",
        "serve",
        "tests.hosting._cli_agent:endless",
        "--store",
        f"sqlite:{db}",
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


def _claim(db: Path, key: str) -> tuple[int | None, str | None] | None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT status, body FROM tl_idempotency WHERE key = ?", (f"/v1/responses:{key}",)
        ).fetchone()
    return None if row is None else (row[0], row[1])


async def _history(client: openai.AsyncOpenAI, worker: _Worker, db: Path) -> list[str]:
    """The worker's user turns as stored, checked to be whole (each answered by one "pong")."""
    if worker.conversation is not None:
        thread = SQLiteChatMessageStore(db, worker.conversation)
        messages = await thread.list_messages()
        await thread.aclose()
    else:
        last = await client.responses.retrieve(worker.acked[-1]) if worker.acked else None
        if last is None:
            return []
        with contextlib.closing(sqlite3.connect(db)) as conn:
            container = conn.execute(
                "SELECT container FROM tl_objects WHERE id = ?", (last.id,)
            ).fetchone()[0]
        thread = SQLiteChatMessageStore(db, container)
        messages = await thread.list_messages()
        await thread.aclose()
    texts = [m.text for m in messages]
    assert texts[1::2] == ["pong"] * (len(texts) // 2) and len(texts) % 2 == 0, texts
    return texts[0::2]


async def test_sigkill_during_turns_loses_no_acknowledged_turn_and_duplicates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    db = home / "threads.db"
    rng = random.Random(7)
    conversations: list[str] = []
    for round_no in range(ROUNDS):
        proc, url = await _start(db)
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

        proc, url = await _start(db)
        try:
            async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
                for worker in workers:
                    stored = await _history(client, worker, db)
                    acked = [worker.body(i) for i in range(len(worker.acked))]
                    # Every acknowledged turn, in order, once; at most the one in flight beyond.
                    assert stored[: len(acked)] == acked, (worker.name, stored)
                    assert len(stored) <= len(acked) + 1, (worker.name, stored)
                    for response_id in worker.acked:
                        assert (await client.responses.retrieve(response_id)).status == "completed"
                    in_flight = len(acked)
                    claim = _claim(db, worker.body(in_flight))
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
                    assert await _history(client, worker, db) == stored
        finally:
            proc.terminate()
            await proc.wait()

    # The server's conversations are threads of the file: `threadline threads` reads them.
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
