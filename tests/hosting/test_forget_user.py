"""``POST /v1/users/forget``: one end user of an account forgotten whole (issue 20 item 8).

A real server on loopback (SQLite and PostgreSQL) with conversation and preference memory on a
real SQLite memory store, driven by the official ``openai`` client; the endpoint itself through
raw HTTP (the SDK has no method for it). The model is scripted.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.hosting._raw_http import request as raw
from tests.hosting.conftest import KEYS, drop_schema, postgres_database, start_server
from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig
from threadline.hosting._runner import memory_user_id
from threadline.memory import (
    ConversationMemory,
    ExtractedFact,
    MemoryScope,
    SQLiteMemoryStore,
    UserPreferencesMemory,
)
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.opener import open_database

ADA = "ada/x y"  # a user id that needs quoting in the memory owner id


@dataclass
class _Served:
    url: str
    model: ScriptedChatClient
    store: SQLiteMemoryStore
    preferences: UserPreferencesMemory
    database: RecordDatabase


@pytest.fixture(params=["sqlite", "postgres"])
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[_Served]:
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    preferences = UserPreferencesMemory(store, tools=False)
    model = ScriptedChatClient([])
    agent = ChatAgent(model, context_providers=[ConversationMemory(store), preferences])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    if request.param == "postgres":
        database: Any = await postgres_database("tl_forget_" + os.urandom(4).hex())
    else:
        database = open_database(f"sqlite:{tmp_path / 'server.db'}")
    uv, task, url = await start_server(agent, config, store=database)
    try:
        yield _Served(url, model, store, preferences, database)
    finally:
        uv.should_exit = True
        await task
        await store.aclose()
        if request.param == "postgres":
            await drop_schema(database.schema)


async def _words_in_threads(database: RecordDatabase, word: str) -> int:
    found = 0
    for info in await database.list_threads():
        messages = await database.store(info.thread_id).list_messages()
        found += sum(word in m.text for m in messages)
    return found


async def test_forgetting_a_user_erases_memory_conversations_and_responses(
    served: _Served,
) -> None:
    served.model.add_replies(*(f"reply {i}" for i in range(9)))
    for owner, fact in [  # fmt: skip(memory_user_id("alice", ADA), "likes quinces"),
        (memory_user_id("bob", ADA), "keeps quinces"),
    ]:
        await served.preferences.add_facts(
            [ExtractedFact("fruit", fact, "preference")], user_id=owner
        )
    async with (
        openai.AsyncOpenAI(base_url=served.url, api_key="key-alice", max_retries=0) as alice,
        openai.AsyncOpenAI(base_url=served.url, api_key="key-bob", max_retries=0) as bob,
    ):
        first = await alice.responses.create(input="my secret is quince", user=ADA)
        second = await alice.responses.create(
            input="and marmalade", user=ADA, previous_response_id=first.id
        )
        conversation = await alice.conversations.create()
        in_conversation = await alice.responses.create(
            input="quince again", user=ADA, conversation=conversation.id
        )
        keyed = await alice.responses.create(
            input="quince keyed", user=ADA, extra_headers={"Idempotency-Key": "k-1"}
        )
        other_user = await alice.responses.create(input="plum here", user="cy")
        no_user = await alice.responses.create(input="plum too")
        other_account = await bob.responses.create(input="quince of bob", user=ADA)

        # Another account's key forgets its own 'ada', never alice's.
        answer = await raw(served.url, "POST", "/v1/users/forget", key="key-bob", json_body={
            "user": ADA,
        })  # fmt: skip
        assert answer.status == 200, answer.text
        assert answer.json()["responses"] == 1
        await alice.responses.retrieve(first.id)

        answer = await raw(served.url, "POST", "/v1/users/forget", json_body={"user": ADA})
        assert answer.status == 200, answer.text
        report = answer.json()
        assert report["object"] == "user.forgotten" and report["user"] == ADA
        assert report["responses"] == 4
        assert report["conversations"] == 1
        assert report["threads"] == 3  # the chain's, the conversation's, the keyed response's
        assert report["idempotency_answers"] == 1
        assert report["memory"]["records"] >= 5  # the fact and the four turns remembered

        for gone in (first, second, in_conversation, keyed, other_account):
            with pytest.raises(openai.NotFoundError):
                await (bob if gone is other_account else alice).responses.retrieve(gone.id)
        with pytest.raises(openai.NotFoundError):
            await alice.conversations.retrieve(conversation.id)
        for kept in (other_user, no_user):
            assert (await alice.responses.retrieve(kept.id)).id == kept.id
        # The stored answer to the key is gone too: a retry runs again instead of replaying.
        again = await alice.responses.create(
            input="later", user="cy", extra_headers={"Idempotency-Key": "k-1"}
        )
        assert again.id != keyed.id

    assert await _words_in_threads(served.database, "quince") == 0
    assert await _words_in_threads(served.database, "plum") == 2
    ada = MemoryScope(user_id=memory_user_id("alice", ADA))
    assert await served.store.list(scope=ada) == []
    assert await served.store.list(scope=MemoryScope(user_id=memory_user_id("alice", "cy")))
    facts = await served.preferences.facts(user_id=memory_user_id("bob", ADA))
    assert facts == []  # bob's 'ada' was forgotten by bob's own call


async def test_forgetting_needs_a_valid_user(served: _Served) -> None:
    for body, match in [
        ({}, "Missing required parameter: 'user'"),
        ({"user": ""}, "it is empty"),
        ({"user": "  "}, "it is empty"),
        ({"user": "u" * 300}, "over the limit of 256"),
        ({"user": 7}, "expected str"),
    ]:
        answer = await raw(served.url, "POST", "/v1/users/forget", json_body=body)
        assert answer.status == 400, (body, answer.text)
        error = answer.json()["error"]
        assert error["param"] == "user" and match in error["message"], error
    answer = await raw(served.url, "POST", "/v1/users/forget", key="nope", json_body={"user": "a"})
    assert answer.status == 401
