"""Regressions for issue 20's server items, driven against the real server on loopback.

Tool results that answer no call (item 20) and the request's ``user`` field (item 3). The
official SDK is used wherever it can express the request; raw HTTP where it cannot.
"""

from __future__ import annotations

# pyright: reportDeprecated=false
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.hosting.conftest import KEYS, Server, start_server
from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient
from threadline.hosting import ServerConfig
from threadline.hosting._runner import memory_user_id
from threadline.memory import UserPreferencesMemory
from threadline.memory.stores import SQLiteMemoryStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _tools() -> Any:
    return [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]


def _output(call_id: str) -> Any:
    return {"type": "function_call_output", "call_id": call_id, "output": "42"}


def _assistant_call(call_id: str) -> Any:
    return {
        "role": "assistant",
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


# -- item 20: tool results that answer no call -----------------------------------------------------


async def test_a_function_call_output_answering_no_call_is_refused_and_nothing_stored(
    server: Server,
) -> None:
    call = FunctionCallContent(call_id="call_1", name="lookup", arguments="{}")
    server.model.add_replies([call], "done")
    async with server.client(max_retries=0) as client:
        # A new chain: no call at all.
        with pytest.raises(openai.BadRequestError, match="call_nope") as caught:
            await client.responses.create(input=[_output("call_nope")])
        assert caught.value.param == "input"
        assert caught.value.code == "invalid_value"
        first = await client.responses.create(input="look", tools=_tools())
        # Continuing a chain with the wrong id, or with the right one and a stray one.
        with pytest.raises(openai.BadRequestError, match="call_2"):
            await client.responses.create(input=[_output("call_2")], previous_response_id=first.id)
        with pytest.raises(openai.BadRequestError, match="call_2"):
            await client.responses.create(
                input=[_output("call_1"), _output("call_2")], previous_response_id=first.id
            )
        # A conversation: the stray output is refused and the conversation keeps its items.
        conversation = await client.conversations.create(items=[])
        with pytest.raises(openai.BadRequestError, match="call_3"):
            await client.responses.create(input=[_output("call_3")], conversation=conversation.id)
        items = await client.conversations.items.list(conversation.id)
        assert items.data == []
        # The right answer still works, once: answering it again answers no pending call.
        done = await client.responses.create(
            input=[_output("call_1")], previous_response_id=first.id
        )
        assert done.output_text == "done"
        with pytest.raises(openai.BadRequestError, match="call_1"):
            await client.responses.create(input=[_output("call_1")], previous_response_id=done.id)
    # Only the two valid turns reached the model.
    assert len(server.model.calls) == 2


async def test_a_tool_message_answering_no_call_is_refused(server: Server) -> None:
    server.model.add_replies("fine")
    async with server.client(max_retries=0) as client:
        with pytest.raises(openai.BadRequestError, match="call_x") as caught:
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "go"},
                    {"role": "tool", "tool_call_id": "call_x", "content": "42"},
                ],
            )
        assert caught.value.param == "messages"
        # Answering a call of the conversation before it was made answers nothing either.
        with pytest.raises(openai.BadRequestError, match="call_y"):
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "go"},
                    {"role": "tool", "tool_call_id": "call_y", "content": "42"},
                    _assistant_call("call_y"),
                    {"role": "tool", "tool_call_id": "call_y", "content": "42"},
                ],
            )
        # Answered twice.
        with pytest.raises(openai.BadRequestError, match="call_z"):
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "go"},
                    _assistant_call("call_z"),
                    {"role": "tool", "tool_call_id": "call_z", "content": "42"},
                    {"role": "tool", "tool_call_id": "call_z", "content": "43"},
                ],
            )
        ok = await client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "go"},
                _assistant_call("call_z"),
                {"role": "tool", "tool_call_id": "call_z", "content": "42"},
            ],
        )
        assert ok.choices[0].message.content == "fine"
    assert len(server.model.calls) == 1


# -- item 3: the request's user field --------------------------------------------------------------


async def test_an_over_long_or_control_character_user_is_refused(server: Server) -> None:
    server.model.add_replies("one", "two")
    async with server.client(max_retries=0) as client:
        for user, why in (("u" * 257, "257 characters"), ("bob\nalice", r"U\+000A")):
            with pytest.raises(openai.BadRequestError, match=why) as caught:
                await client.responses.create(input="hi", user=user)
            assert caught.value.param == "user"
            with pytest.raises(openai.BadRequestError, match=why) as caught:
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], user=user
                )
            assert caught.value.param == "user"
        assert server.model.calls == []
        longest = "ü" * 256
        answer = await client.responses.create(input="hi", user=longest)
        assert answer.output_text == "one"
        assert answer.user == longest
        chat = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], user=longest
        )
        assert chat.choices[0].message.content == "two"


async def test_per_user_state_is_pruned_once_each_users_work_is_done(tmp_path: Path) -> None:
    users = 25
    facts = '{"facts": [{"subject": "drink", "fact": "likes tea", "kind": "preference"}]}'
    extractor = ScriptedChatClient([facts] * users)
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    memory = UserPreferencesMemory(store, extractor=extractor, tools=False)
    model = ScriptedChatClient(["noted"] * users)
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    uv, task, url = await start_server(ChatAgent(model, context_providers=[memory]), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            for i in range(users):
                answer = await client.responses.create(input="I like tea", user=f"user-{i}")
                assert answer.output_text == "noted"
        await memory.wait_pending()
        assert len(extractor.calls) == users
        learnt = await memory.facts(user_id=memory_user_id("alice", "user-7"))
        assert [f.text for f in learnt] == ["likes tea"]
        # Every user's work is done: nothing of theirs is held any more.
        assert memory._pending == {}
        assert memory._locks == {}
    finally:
        uv.should_exit = True
        await task
        await store.aclose()
