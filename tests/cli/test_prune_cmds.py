"""``threadline threads prune`` and ``threadline memory prune``, run as a person runs them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from threadline.cli.memory_cmd import MEMORY_FILE
from threadline.memory import MemoryRecord, MemoryScope, SQLiteMemoryStore
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types import ChatMessage, Role

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``threadline --home HOME ARGS...`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
        check=False,
    )


def _saved(home: Path, *texts: str, thread_id: str) -> SQLiteChatMessageStore:
    async def save() -> SQLiteChatMessageStore:
        store = SQLiteChatMessageStore(home / "threads.db", thread_id=thread_id)
        await store.add_messages([ChatMessage(Role.USER, t) for t in texts], expected_version=0)
        return store

    return asyncio.run(save())


def _ids(home: Path) -> set[str]:
    done = cli(home, "threads", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {json.loads(line)["thread_id"] for line in done.stdout.splitlines()}


def test_threads_prune_keeps_new_threads_and_the_parents_of_new_forks(tmp_path: Path) -> None:
    _saved(tmp_path, "old and alone", thread_id="thread_old")
    _saved(tmp_path, "old parent", thread_id="thread_parent")

    async def fork() -> None:
        parent = SQLiteChatMessageStore(tmp_path / "threads.db", thread_id="thread_parent")
        child = await parent.fork()
        await child.add_messages([ChatMessage(Role.USER, "new in the fork")], expected_version=1)
        await parent.aclose()
        await child.aclose()

    asyncio.run(fork())
    _saved(tmp_path, "new", thread_id="thread_new")
    # Forty days pass for the first two (time is the one thing a test cannot wait for).
    conn = sqlite3.connect(tmp_path / "threads.db")
    with conn:
        conn.execute(
            "UPDATE threadline_threads SET updated_at = ? WHERE thread_id IN (?, ?)",
            (time.time() - 40 * 86400, "thread_old", "thread_parent"),
        )
    conn.close()
    before = _ids(tmp_path)
    assert len(before) == 4

    dry = cli(tmp_path, "threads", "prune", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would delete 1 thread (1 message)",
        "  thread_old",
        "kept 1 old thread that newer forks still read",
    ]
    assert _ids(tmp_path) == before

    done = cli(tmp_path, "threads", "prune", "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "deleted 1 thread (1 message)"
    assert _ids(tmp_path) == before - {"thread_old"}
    fork_id = next(t for t in before if t not in {"thread_old", "thread_parent", "thread_new"})
    shown = cli(tmp_path, "threads", "show", fork_id)
    assert "old parent" in shown.stdout and "new in the fork" in shown.stdout


@pytest.mark.parametrize("age", ["0d", "-1d", "soon", "30"])
def test_prune_refuses_a_bad_age_and_changes_nothing(tmp_path: Path, age: str) -> None:
    _saved(tmp_path, "keep me", thread_id="thread_keep")
    for command in ("threads", "memory"):
        done = cli(tmp_path, command, "prune", f"--older-than={age}")
        assert done.returncode == 2
        assert "--older-than" in done.stderr and age in done.stderr
    assert _ids(tmp_path) == {"thread_keep"}


def test_memory_prune_deletes_expired_and_long_superseded_memories(tmp_path: Path) -> None:
    alice = MemoryScope(user_id="alice")
    now = datetime.now(UTC)

    async def remember() -> None:
        async with SQLiteMemoryStore(tmp_path / MEMORY_FILE) as store:
            expired = MemoryRecord(
                kind="fact", text="is in Lisbon this week", scope=alice, expires_at=now
            )
            old = MemoryRecord(kind="fact", text="lives in Porto", scope=alice)
            current = MemoryRecord(kind="fact", text="lives in Faro", scope=alice)
            await store.add([expired, old, current])
            await store.supersede(old.id, scope=alice, valid_to=now - timedelta(days=60))

    asyncio.run(remember())
    time.sleep(0.01)  # the expiry has passed
    dry = cli(tmp_path, "memory", "prune", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would delete 1 expired memory and 1 superseded memory")

    done = cli(tmp_path, "memory", "prune", "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 1 expired memory and 1 superseded memory")

    async def everything() -> list[str]:
        async with SQLiteMemoryStore(tmp_path / MEMORY_FILE) as store:
            records = await store.list(scope=alice, include_superseded=True)
            return [r.text for r in records]

    assert asyncio.run(everything()) == ["lives in Faro"]
