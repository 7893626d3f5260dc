"""The server's conversations are threads of its SQLite file: branches are forks, old files migrate.

(The SIGKILL test and ``threadline threads`` on a server file are in ``test_crash_turns.py``.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import openai
import pytest

from tests._sqlite_sql import OF_THREAD
from tests.hosting.conftest import KEYS, drop_schema, postgres_database, start_server
from threadline import ChatAgent, ChatMessage, Role, ScriptedChatClient, SQLiteChatMessageStore
from threadline.cli.main import main
from threadline.exceptions import StoreError, UsageError
from threadline.hosting import ServerConfig
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.opener import open_database
from threadline.threads.stores.records import ThreadBatch
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase


async def _conversation(db: Path, model: ScriptedChatClient) -> tuple[str, list[str]]:
    """A conversation of two turns made through the official client; its items' texts."""
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS, db_path=str(db))
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create()
            for text in ("first", "second"):
                await client.responses.create(input=text, conversation=conversation.id)
            items = await client.conversations.items.list(conversation.id, order="asc")
            return conversation.id, [str(i.content[0].text) for i in items.data]  # type: ignore[union-attr]
    finally:
        uv.should_exit = True
        await task


async def test_a_previous_response_id_branch_is_a_fork_sharing_its_prefix(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    model = ScriptedChatClient(["one", "two", "branched"])
    config = ServerConfig(api_keys=KEYS, db_path=str(db))
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            first = await client.responses.create(input="a")
            await client.responses.create(input="b", previous_response_id=first.id)
            branch = await client.responses.create(input="c", previous_response_id=first.id)
            assert [m.text for m in model.calls[2].messages] == ["a", "one", "c"]
            inputs = await client.responses.input_items.list(branch.id, order="asc")
            assert [i.content[0].text for i in inputs.data] == ["a", "one", "c"]  # type: ignore[union-attr]
    finally:
        uv.should_exit = True
        await task
    with contextlib.closing(sqlite3.connect(db)) as conn:
        chain, fork = (
            conn.execute(
                "SELECT thread_id FROM threadline_records WHERE kind = 'response' AND id = ?",
                (r,),
            ).fetchone()[0]
            for r in (first.id, branch.id)
        )
        parent, at = conn.execute(
            "SELECT parent_id, fork_version FROM threadline_threads WHERE thread_id = ?", (fork,)
        ).fetchone()
        own = conn.execute(
            f"SELECT COUNT(*) FROM threadline_messages WHERE {OF_THREAD}", (fork,)
        ).fetchone()[0]
    assert (parent, at, own) == (chain, 2, 2)  # the prefix is shared, only the new turn stored
    store = SQLiteChatMessageStore(db, fork)
    assert [m.text for m in await store.list_messages()] == ["a", "one", "c", "branched"]
    await store.aclose()


def _to_previous_layout(db: Path) -> None:
    """Rewrite a server file as the previous version kept it: items in ``tl_items``."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "CREATE TABLE tl_items (container TEXT NOT NULL, seq INTEGER NOT NULL, "
            "body TEXT NOT NULL, PRIMARY KEY (container, seq)) WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO tl_items "
            "SELECT t.thread_id, m.seq, CAST(m.body AS TEXT) FROM threadline_messages m "
            "JOIN threadline_threads t ON t.num = m.thread"
        )
        conn.execute("DROP TABLE threadline_messages")
        conn.execute("DROP TABLE threadline_threads")


async def test_a_previous_layout_file_is_refused_with_the_fix_then_migrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.db"
    conversation, texts = await _conversation(db, ScriptedChatClient(["r1", "r2", "r3"]))
    assert texts == ["first", "r1", "second", "r2"]
    _to_previous_layout(db)
    before = db.read_bytes()
    with pytest.raises(UsageError, match=r"earlier threadline: 4 conversation items.*--migrate"):
        open_database(f"sqlite:{db}")
    # The command refuses it in one line, before serving anything.
    assert main(["serve", "tests.hosting._cli_agent:agent", "--store", f"sqlite:{db}"]) == 1
    assert "--migrate" in capsys.readouterr().err
    assert db.read_bytes() == before  # refused: nothing changed

    database = open_database(f"sqlite:{db}", migrate=True)
    model = ScriptedChatClient(["r3"])
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS), store=database
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            await client.responses.create(input="third", conversation=conversation)
            items = await client.conversations.items.list(conversation, order="asc")
            assert [i.content[0].text for i in items.data] == [*texts, "third", "r3"]  # type: ignore[union-attr]
    finally:
        uv.should_exit = True
        await task
    store = SQLiteChatMessageStore(db, conversation)
    assert len(await store.list_messages()) == 6
    await store.aclose()
    await open_database(f"sqlite:{db}").aclose()  # migrated once: opens without the flag now


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_branch_from_a_history_that_went_away_writes_nothing(
    kind: str, tmp_path: Path
) -> None:
    """The source of a branch lost messages while the turn ran (its conversation was deleted)."""
    database: RecordDatabase
    if kind == "sqlite":
        database = SQLiteThreadDatabase(tmp_path / "s.db")
    else:
        database = await postgres_database("tl_gone_" + os.urandom(4).hex())
    hi = ChatMessage(Role.USER, "hi")
    try:
        await database.commit(ThreadBatch().append("source", [hi, hi.replace(message_id="m2")]))
        branch = ThreadBatch().fork("source", "branch", at=3).append("branch", [hi])
        with pytest.raises(ValueError, match="fork thread 'source' at 3: it holds 2"):
            await database.commit(branch)
        assert await database.list_threads() and "branch" not in {
            t.thread_id for t in await database.list_threads()
        }
        fine = ThreadBatch().fork("source", "branch", at=1)
        await database.commit(fine.append("branch", [hi], expected_version=1))
        assert await database.store("branch").list_messages() == [hi, hi]
    finally:
        await database.aclose()
        if kind == "postgres":
            await drop_schema(getattr(database, "schema"))  # noqa: B009


async def test_a_previous_layout_postgres_schema_is_refused_then_migrated(
    postgres_schema: str, postgres_url: str
) -> None:
    import psycopg
    from psycopg import sql

    model = ScriptedChatClient(["r1", "r2"])
    config = ServerConfig(api_keys=KEYS, postgres_url=postgres_url, postgres_schema=postgres_schema)
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = (await client.conversations.create()).id
            for text in ("first", "second"):
                await client.responses.create(input=text, conversation=conversation)
    finally:
        uv.should_exit = True
        await task
    # Rewrite the schema as the previous version kept it: items in tl_items.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(postgres_schema)))
        conn.execute(
            "CREATE TABLE tl_items (container TEXT NOT NULL, seq INTEGER NOT NULL, "
            "body TEXT NOT NULL, PRIMARY KEY (container, seq))"
        )
        conn.execute(
            "INSERT INTO tl_items SELECT thread_id, seq, convert_from(body, 'UTF8') "
            "FROM threadline_messages"
        )
        conn.execute("DROP TABLE threadline_messages, threadline_threads CASCADE")

    refused = open_database(postgres_url, schema=postgres_schema)
    with pytest.raises(StoreError, match=r"earlier threadline: 4 conversation items.*--migrate"):
        await refused.open()  # what the server does before it serves anything
    await refused.aclose()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(postgres_schema)))
        assert conn.execute("SELECT COUNT(*) FROM tl_items").fetchone() == (4,)  # untouched

    migrated = open_database(postgres_url, schema=postgres_schema, migrate=True)
    model = ScriptedChatClient(["r3"])
    uv, task, url = await start_server(ChatAgent(model), config, store=migrated)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            await client.responses.create(input="third", conversation=conversation)
            items = await client.conversations.items.list(conversation, order="asc")
            texts = [i.content[0].text for i in items.data]  # type: ignore[union-attr]
            assert texts == ["first", "r1", "second", "r2", "third", "r3"]
    finally:
        uv.should_exit = True
        await task
