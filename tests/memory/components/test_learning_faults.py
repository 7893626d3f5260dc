"""Learning from a turn never fails it: a memory store failing in ``invoked`` is logged and retried.

The faults are real: a trigger that aborts inserts in the SQLite file, a CHECK constraint that
refuses them in PostgreSQL; lifting them shows that the next turn stores what was missed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from threadline import ChatAgent, ScriptedChatClient
from threadline.memory import ConversationMemory, UserPreferencesMemory
from threadline.memory.records import MemoryScope
from threadline.memory.store import MemoryStore
from threadline.memory.stores import PostgresMemoryStore, SQLiteMemoryStore

ALICE = MemoryScope(user_id="alice")


@dataclass
class Faulty:
    """A real store and a switch that makes every insert into it fail (and back)."""

    store: MemoryStore
    set_broken: Callable[[bool], None]


@pytest.fixture(params=["sqlite", "postgres"])
async def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Faulty]:
    if request.param == "sqlite":
        path = tmp_path / "memory.db"
        store: MemoryStore = SQLiteMemoryStore(path, embedder=None)
        await store.list(scope=ALICE)  # creates the tables

        def sqlite_switch(broken: bool) -> None:
            with sqlite3.connect(path) as conn:
                if broken:
                    conn.execute(
                        "CREATE TRIGGER boom BEFORE INSERT ON memories "
                        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
                    )
                else:
                    conn.execute("DROP TRIGGER boom")

        yield Faulty(store, sqlite_switch)
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        store = PostgresMemoryStore(url, schema=schema)
        await store.list(scope=ALICE)  # creates the tables
        table = sql.Identifier(schema, "threadline_memories")

        def postgres_switch(broken: bool) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                if broken:
                    conn.execute(
                        sql.SQL(
                            "ALTER TABLE {} ADD CONSTRAINT boom CHECK (false) NOT VALID"
                        ).format(table)
                    )
                else:
                    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT boom").format(table))

        yield Faulty(store, postgres_switch)
    await store.aclose()


async def test_a_failing_memory_store_does_not_fail_a_stored_turn(
    faulty: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    memory = ConversationMemory(faulty.store)
    client = ScriptedChatClient(["What a lovely name!", "Beagles love walks.", "Noted."])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    faulty.set_broken(True)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        first = await agent.run("We adopted a beagle named Biscuit.", thread=thread)
        second = await agent.run("He loves long walks by the river.", thread=thread)
    assert [first.text, second.text] == ["What a lovely name!", "Beagles love walks."]
    stored = await thread.message_store.list_messages()  # type: ignore[union-attr]
    assert len(stored) == 4  # both turns whole, answers included
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per cause
    assert "alice" in warnings[0].getMessage() and "will retry" in warnings[0].getMessage()
    assert await faulty.store.list(scope=ALICE) == []

    faulty.set_broken(False)
    await agent.run("Any tips for the vet?", thread=thread)
    texts = [r.text for r in await faulty.store.list(scope=ALICE, kinds=["turn"])]
    assert len(texts) == 6  # the missed turns are indexed by the next one, each once
    assert any("Biscuit" in t for t in texts) and any("river" in t for t in texts)
    hits = await memory.recall("beagle Biscuit", user_id="alice")
    assert hits and "Biscuit" in hits[0].text
    # the thread still serializes and restores with its memory state
    restored = await agent.deserialize_thread(await thread.serialize())
    assert restored.context_state == thread.context_state


async def test_a_failed_fact_extraction_is_retried_with_the_next_turn(
    faulty: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    answer = json.dumps({"facts": [{"subject": "pet", "fact": "Has a beagle.", "kind": "fact"}]})
    extractor = ScriptedChatClient([answer, answer, json.dumps({"facts": []})])
    memory = UserPreferencesMemory(faulty.store, extractor=extractor)
    agent = ChatAgent(ScriptedChatClient(["Lovely!", "Sure.", "Ok."]), context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    faulty.set_broken(True)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        await agent.run("We adopted a beagle.", thread=thread)
        await memory.wait_pending()
    assert [r.getMessage() for r in caplog.records if "could not learn" in r.getMessage()]
    assert await faulty.store.list(scope=ALICE) == []
    faulty.set_broken(False)
    await agent.run("I am back again.", thread=thread)  # retries the failed turn, then its own
    await memory.wait_pending()
    assert [r.text for r in await memory.facts(user_id="alice")] == ["Has a beagle."]
    assert len(extractor.calls) == 3


async def test_a_message_with_nul_is_answered_and_remembered(store: MemoryStore) -> None:
    """U+0000 in a message (PostgreSQL cannot store it) is remembered as U+FFFD, on any store."""
    answer = json.dumps({"facts": [{"subject": "pet", "fact": "Has a dog\x00.", "kind": "fact"}]})
    facts = UserPreferencesMemory(store, extractor=ScriptedChatClient([answer]))
    turns = ConversationMemory(store)
    agent = ChatAgent(ScriptedChatClient(["Cute!"]), context_providers=[turns, facts])
    thread = agent.get_new_thread(user_id="alice")
    reply = await agent.run("My dog\x00 is called Rex.", thread=thread)
    assert reply.text == "Cute!"
    await facts.wait_pending()
    hits = await turns.recall("dog called Rex", user_id="alice")
    assert hits and "My dog\ufffd is called Rex." in hits[0].text
    assert [r.text for r in await facts.facts(user_id="alice")] == ["Has a dog\ufffd."]
