"""SQLiteChatMessageStore under an agent: WAL, off the event loop, durable across processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from threadline import ChatAgent, ChatMessage, Role, ScriptedChatClient
from threadline.threads.stores.sqlite import SQLiteChatMessageStore


def sqlite_agent(db: Path, replies: list[str]) -> ChatAgent:
    return ChatAgent(
        ScriptedChatClient(replies),
        instructions="Be helpful",
        chat_message_store_factory=lambda: SQLiteChatMessageStore(db),
    )


async def test_one_row_per_message_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    agent = sqlite_agent(db, ["a", "b"])
    thread = agent.get_new_thread()
    await agent.run("one", thread=thread)
    await agent.run("two", thread=thread)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT seq, body FROM threadline_messages ORDER BY seq").fetchall()
    assert [(seq, json.loads(body)["text"]) for seq, body in rows] == [
        (1, "one"),
        (2, "a"),
        (3, "two"),
        (4, "b"),
    ]


async def test_blocking_work_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements_by_thread: list[str] = []
    real_connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        # The trace callback runs in whichever thread executes each statement.
        conn.set_trace_callback(
            lambda _: statements_by_thread.append(threading.current_thread().name)
        )
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    agent = sqlite_agent(tmp_path / "fresh.db", ["answer"])
    await agent.run("question", thread=agent.get_new_thread())
    assert statements_by_thread, "no SQL ran"
    assert threading.current_thread().name not in statements_by_thread


async def test_thread_survives_a_process_restart(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    agent = sqlite_agent(db, ["Nice to meet you, Alice."])
    thread = agent.get_new_thread()
    await agent.run("My name is Alice", thread=thread)
    state_file = tmp_path / "thread.json"
    state_file.write_text(json.dumps(await thread.serialize()))

    # A new process restores the thread from its state and continues it.
    script = textwrap.dedent(
        f"""
        import asyncio, json
        from threadline import ChatAgent, ScriptedChatClient

        async def main():
            client = ScriptedChatClient(["You are Alice."])
            agent = ChatAgent(client, instructions="Be helpful")
            thread = await agent.deserialize_thread(json.load(open({str(state_file)!r})))
            await agent.run("What's my name?", thread=thread)
            print(json.dumps([m.text for m in client.calls[0].messages]))

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert json.loads(stdout) == [
        "Be helpful",
        "My name is Alice",
        "Nice to meet you, Alice.",
        "What's my name?",
    ]
    # And this process sees what the other one wrote.
    assert thread.message_store is not None
    assert [m.text for m in await thread.message_store.list_messages()][-2:] == [
        "What's my name?",
        "You are Alice.",
    ]


async def test_serialized_state_names_the_thread_and_nothing_else(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    agent = sqlite_agent(db, ["the secret answer"])
    thread = agent.get_new_thread()
    await agent.run("a secret question", thread=thread)
    state = await thread.serialize()
    store = thread.message_store
    assert isinstance(store, SQLiteChatMessageStore)
    assert state["store"] == {
        "kind": "sqlite",
        "state": {"path": str(db), "thread_id": store.thread_id},
    }
    assert "secret" not in json.dumps(state)
    # Restoring twice points at the same rows: nothing is duplicated.
    for _ in range(2):
        restored = await ChatAgent(ScriptedChatClient([])).deserialize_thread(state)
        assert restored.message_store is not None
        assert len(await restored.message_store.list_messages()) == 2


async def test_fork_writes_no_message_rows(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    agent = sqlite_agent(db, [f"answer {i}" for i in range(12)])
    thread = agent.get_new_thread()
    for i in range(10):
        await agent.run(f"q{i}", thread=thread)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM threadline_messages").fetchone()[0]
    branch = await thread.fork()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM threadline_messages").fetchone()[0] == before
    await agent.run("main", thread=thread)
    await agent.run("branch", thread=branch)
    assert branch.message_store is not None and thread.message_store is not None
    main_texts = [m.text for m in await thread.message_store.list_messages()]
    branch_texts = [m.text for m in await branch.message_store.list_messages()]
    assert main_texts[:20] == branch_texts[:20]
    assert (main_texts[20:], branch_texts[20:]) == (["main", "answer 10"], ["branch", "answer 11"])


async def test_concurrent_runs_on_one_sqlite_thread_are_serialized(tmp_path: Path) -> None:
    agent = sqlite_agent(tmp_path / "t.db", ["first answer", "second answer"])
    thread = agent.get_new_thread()
    await asyncio.gather(agent.run("first", thread=thread), agent.run("second", thread=thread))
    assert thread.message_store is not None
    assert [m.text for m in await thread.message_store.list_messages()] == [
        "first",
        "first answer",
        "second",
        "second answer",
    ]


async def test_new_files_get_small_pages_and_old_files_keep_theirs(tmp_path: Path) -> None:
    """2 KB pages write less per turn (the WAL writes whole pages); a 4 KB file still works."""
    import sqlite3 as stdlib_sqlite

    from threadline.threads.stores.sqlite import PAGE_SIZE

    new = tmp_path / "new.db"
    async with SQLiteChatMessageStore(new) as store:
        await store.add_messages([ChatMessage(Role.USER, "hi")])
    old = tmp_path / "old.db"
    conn = stdlib_sqlite.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("CREATE TABLE keep (x)")  # the file exists, with its page size, before us
    conn.close()
    async with SQLiteChatMessageStore(old, thread_id="t") as store:
        await store.add_messages([ChatMessage(Role.USER, "still here")])
        assert [m.text for m in await store.list_messages()] == ["still here"]
    sizes: dict[str, int] = {}
    for path in (new, old):
        conn = stdlib_sqlite.connect(path)
        sizes[path.name] = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
    assert sizes == {"new.db": PAGE_SIZE, "old.db": 4096}
