"""Crash safety: a writer killed with SIGKILL at a random moment loses no acknowledged turn and
leaves no partial one, on every durable store.

A child process (``crash_child.py``) appends turns in a loop and reports each turn after its
append returned. The test kills it at a random moment, reopens the thread and checks that every
acknowledged turn is there, whole and in order, and that the thread ends on a whole turn (at most
one turn committed just before its acknowledgement could be printed). For Redis the test runs
its own server with ``appendonly yes`` and ``appendfsync always`` and kills that too after each
writer, so acknowledged turns must also survive a server crash and an AOF reload.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import threadline
from threadline.testing.store_conformance import close_store

from .crash_child import open_store

REPEATS = 20
CHILD = Path(__file__).parent / "crash_child.py"
SRC = str(Path(threadline.__file__).resolve().parent.parent)


def _run_child(config: dict[str, Any], rng: random.Random) -> list[int]:
    """Start a writer, kill it at a random moment after it is ready; return the acked turns."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    ready = proc.stdout.readline()
    if ready != b"ready\n":
        proc.kill()
        proc.wait()
        raise AssertionError(f"writer did not start: {ready!r} {proc.stderr.read()!r}")
    time.sleep(rng.uniform(0.0, 0.25))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack ")]


def _check(texts: list[str], acked: list[int]) -> int:
    """Verify whole, ordered turns covering every acked one; return how many turns are stored."""
    assert acked == list(range(len(acked))), "acknowledgements out of order"
    turns = 0
    i = 0
    while i < len(texts):
        index, part, _ = texts[i].split("|")
        size = int(part.split("/")[1])
        assert int(index) == turns, f"turn {turns} missing, found turn {index} at message {i}"
        got = [t.split("|")[1] for t in texts[i : i + size]]
        assert got == [f"{k}/{size}" for k in range(size)], f"turn {index} is partial: {got}"
        turns += 1
        i += size
    assert turns >= len(acked), f"acknowledged turns lost: stored {turns}, acked {len(acked)}"
    assert turns <= len(acked) + 1, f"{turns - len(acked)} turns stored beyond the last ack"
    return turns


async def _crash_many(
    make_config: Callable[[str], dict[str, Any]], after_kill: Callable[[], Awaitable[None]]
) -> None:
    rng = random.Random(os.environ.get("THREADLINE_CRASH_SEED", str(time.time_ns())))
    stored_total = 0
    for _ in range(REPEATS):
        config = make_config("thread_" + uuid.uuid4().hex)
        acked = await asyncio.to_thread(_run_child, config, rng)
        await after_kill()
        store = open_store(config)
        try:
            texts = [m.text for m in await store.list_messages()]
        finally:
            await close_store(store)
        stored_total += _check(texts, acked)
    assert stored_total > 0, "no writer got a single turn in before being killed"


async def test_sqlite_survives_writer_kill(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")

    async def nothing() -> None:
        pass

    await _crash_many(lambda tid: {"kind": "sqlite", "path": path, "thread_id": tid}, nothing)


async def test_postgres_survives_writer_kill(postgres_url: str, postgres_schema: str) -> None:
    async def nothing() -> None:
        pass

    await _crash_many(
        lambda tid: {
            "kind": "postgres",
            "dsn": postgres_url,
            "schema": postgres_schema,
            "thread_id": tid,
        },
        nothing,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _RedisServer:
    """A private redis-server with every write fsynced to its AOF before it is acknowledged."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--aof-load-truncated", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[_RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not installed (THREADLINE_REQUIRE_SERVICES=1)")
        pytest.skip("redis-server is not installed")
    server = _RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


async def test_redis_with_aof_survives_writer_and_server_kill(
    private_redis: _RedisServer,
) -> None:
    async def crash_server_too() -> None:
        private_redis.kill()  # SIGKILL: only what reached the AOF survives
        private_redis.start()

    await _crash_many(
        lambda tid: {
            "kind": "redis",
            "url": private_redis.url,
            "prefix": "crash:",
            "thread_id": tid,
        },
        crash_server_too,
    )
