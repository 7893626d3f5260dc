"""Two processes writing one user's memory in one SQLite file, and the examples running."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from threadline import ChatMessage, Role
from threadline.memory import ConversationMemory, SQLiteMemoryStore, UserPreferencesMemory
from threadline.memory.records import MemoryScope
from threadline.memory.store import MemoryStore
from threadline.memory.stores import PostgresMemoryStore

ROOT = Path(__file__).resolve().parents[3]
WRITER = """
import asyncio, sys
from threadline import ChatMessage, Role
from threadline.memory import (
    ConversationMemory, ExtractedFact, SQLiteMemoryStore, UserPreferencesMemory,
)

async def main(path: str, name: str) -> None:
    store = SQLiteMemoryStore(path, embedder=None)
    facts = UserPreferencesMemory(store)
    conversations = ConversationMemory(store)
    for i in range(20):
        await facts.add_facts(
            [ExtractedFact(f"{name}_{i}", f"Fact {i} from writer {name}.", "fact")],
            user_id="alice",
        )
        message = ChatMessage(Role.USER, f"Writer {name} says hello number {i}.")
        await conversations.ingest([message], user_id="alice", thread_id=f"{name}-{i}")
    await store.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_write_one_users_memory(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), name, env=env, stderr=subprocess.PIPE
        )
        for name in ("amber", "basil")
    ]
    for proc in procs:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=300)
        assert proc.returncode == 0, stderr.decode()
    store = SQLiteMemoryStore(path, embedder=None)
    facts = UserPreferencesMemory(store, limit=100)
    texts = {r.text for r in await facts.facts(user_id="alice")}
    assert texts == {f"Fact {i} from writer {w}." for i in range(20) for w in ("amber", "basil")}
    hits = await ConversationMemory(store).recall("writer basil hello number 7", user_id="alice")
    # both writers' turns are searchable (the fused ranking also weighs recency, so which of two
    # near-identical lines comes first depends on the interleaving of the writes)
    assert "basil-7" in [h.thread_id for h in hits[:2]]
    await store.aclose()


INGESTER = """
import asyncio, sys
from threadline import ChatMessage, Role
from threadline.memory import ConversationMemory, SQLiteMemoryStore
from threadline.memory.stores import PostgresMemoryStore

async def main(kind: str, where: str, schema: str) -> None:
    if kind == "sqlite":
        store = SQLiteMemoryStore(where, embedder=None)
    else:
        store = PostgresMemoryStore(where, schema=schema)
    memory = ConversationMemory(store)
    messages = [
        ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"Line {i} about otters.",
                    message_id=f"m{i}")
        for i in range(300)
    ]
    await store.list(scope=memory.scoping.read_scope("alice"))  # connected, tables made
    print("ready", flush=True)
    sys.stdin.readline()  # both start ingesting at once
    await memory.ingest(messages, user_id="alice", thread_id="t1")
    await store.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_two_processes_ingesting_one_thread_store_each_turn_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        args = [str(tmp_path / "memory.sqlite3"), ""]
    else:
        args = [request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            INGESTER,
            kind,
            *args,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
        assert line == b"ready\n", line
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    for proc in procs:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=300)
        assert proc.returncode == 0, stderr.decode()
    if kind == "sqlite":
        store: MemoryStore = SQLiteMemoryStore(args[0], embedder=None)
    else:
        store = PostgresMemoryStore(args[0], schema=args[1])
    try:
        turns = await store.list(scope=MemoryScope(user_id="alice"), kinds=["turn"])
        assert sorted(r.message_ids[-1] for r in turns) == sorted(f"m{i}" for i in range(300))
        again = ConversationMemory(store)
        assert (
            await again.ingest(
                [ChatMessage(Role.USER, "Line 0 about otters.", message_id="m0")],
                user_id="alice",
                thread_id="t1",
            )
            == 0
        )
    finally:
        await store.aclose()


async def run_example(name: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "memory" / name),
        *args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, stderr.decode()
    return stdout.decode()


async def test_the_examples_run(tmp_path: Path) -> None:
    out = await run_example("remember_the_user.py", str(tmp_path))
    told = out.split("What the model was told a week later:")[1].split("Agent:")[0]
    assert "- The user is vegetarian." in told
    assert "2026-11-16 (Monday)" in told and "I love Italian food" in told
    assert "Agent: How about a mushroom risotto?" in out
    out = await run_example("import_history.py")
    assert "What did I think of the exhibition? -> s1" in out
    assert "What is my beagle called? -> s2 ['s2-0'] 2023-06-02" in out
