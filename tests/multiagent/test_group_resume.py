"""Stop a group chat anywhere, serialize it, restore it elsewhere, and finish: same conversation."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from threadline import (
    ChatAgent,
    ConcurrentThreadUpdateError,
    GroupChat,
    ScriptedChatClient,
    ThreadStateError,
)
from threadline.threads.stores.sqlite import SQLiteChatMessageStore

from .conftest import cast, shape, thread_shape

SCRIPTS = {
    "writer": ["w1", "w2", "w3"],
    "editor": ["e1", "e2", "e3"],
    "critic": ["c1", "c2", "c3"],
}
ROUNDS = 9


async def _uninterrupted() -> tuple[list[Any], dict[str, list[Any]], dict[str, list[Any]]]:
    agents, clients = cast(SCRIPTS)
    response = await GroupChat(agents, max_rounds=ROUNDS).run("Go.")
    threads = {n: await thread_shape(t) for n, t in response.thread.participants.items()}
    calls = {n: [shape(c.messages) for c in cl.calls] for n, cl in clients.items()}
    return shape(await response.thread.messages()), threads, calls


@pytest.mark.parametrize("k", range(1, ROUNDS))
async def test_stopping_after_any_turn_and_resuming_gives_the_same_conversation(k: int) -> None:
    expected_transcript, expected_threads, expected_calls = await _uninterrupted()
    agents, clients = cast(SCRIPTS)
    first = await GroupChat(agents, max_rounds=ROUNDS).run("Go.", max_rounds=k)
    state = json.loads(json.dumps(await first.thread.serialize()))  # plain JSON, nothing else

    fresh_agents, _ = cast(SCRIPTS, clients=clients)  # new objects; the "model" carries on
    chat = GroupChat(fresh_agents, max_rounds=ROUNDS)
    thread = await chat.deserialize_thread(state)
    assert thread.next_speaker == first.next_speaker == ["writer", "editor", "critic"][k % 3]
    rest = await chat.run(thread=thread, max_rounds=ROUNDS - k)

    assert shape([*first.messages, *rest.messages]) == expected_transcript[1:]
    assert shape(await thread.messages()) == expected_transcript
    assert {n: await thread_shape(t) for n, t in thread.participants.items()} == expected_threads
    assert {n: [shape(c.messages) for c in cl.calls] for n, cl in clients.items()} == expected_calls


async def test_resume_in_a_new_process(tmp_path: Path) -> None:
    expected_transcript, _, _ = await _uninterrupted()
    agents, _ = cast(SCRIPTS)
    first = await GroupChat(agents).run("Go.", max_rounds=4)
    state_file = tmp_path / "chat.json"
    state_file.write_text(json.dumps(await first.thread.serialize()))
    child = textwrap.dedent(
        f"""
        import asyncio, json, sys
        from threadline import ChatAgent, GroupChat, ScriptedChatClient

        async def main():
            scripts = {{"writer": ["w3"], "editor": ["e2", "e3"], "critic": ["c2", "c3"]}}
            agents = [ChatAgent(ScriptedChatClient(r), f"You are {{n}}.", name=n)
                      for n, r in scripts.items()]
            chat = GroupChat(agents)
            thread = await chat.deserialize_thread(json.load(open(sys.argv[1])))
            await chat.run(thread=thread, max_rounds={ROUNDS - 4})
            print(json.dumps([[m.role.value, m.author_name, m.text]
                              for m in await thread.messages()]))

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        child,
        str(state_file),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0
    assert [tuple(x) for x in json.loads(stdout)] == expected_transcript


async def test_two_processes_continuing_one_chat_never_interleave(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"

    def factory() -> SQLiteChatMessageStore:
        return SQLiteChatMessageStore(db)

    def make(clients: dict[str, ScriptedChatClient] | None = None) -> GroupChat:
        agents = [
            ChatAgent(
                ScriptedChatClient(r) if clients is None else clients[n],
                name=n,
                chat_message_store_factory=factory,
            )
            for n, r in SCRIPTS.items()
        ]
        return GroupChat(agents, transcript_store_factory=factory)

    first = await make().run("Go.", max_rounds=2)
    state = await first.thread.serialize()
    chat_a, chat_b = make(), make()
    thread_a = await chat_a.deserialize_thread(state)
    thread_b = await chat_b.deserialize_thread(state)
    await chat_a.run(thread=thread_a, max_rounds=1)
    before = shape(await thread_a.messages())
    critic_before = await thread_shape(thread_a.participants["critic"])
    with pytest.raises(ConcurrentThreadUpdateError):
        await chat_b.run(thread=thread_b, max_rounds=1)
    with pytest.raises(ConcurrentThreadUpdateError):
        await chat_b.run("Me too.", thread=thread_b)
    # The loser stored nothing anywhere, and never called its model.
    reread = await make().deserialize_thread(await thread_a.serialize())
    assert shape(await reread.messages()) == before
    assert await thread_shape(reread.participants["critic"]) == critic_before


async def test_resume_of_a_long_chat_is_fast_and_exact() -> None:
    import time

    replies = {n: [f"{n} {i}" for i in range(334)] for n in SCRIPTS}
    agents, _ = cast(replies)
    chat = GroupChat(agents, max_rounds=1000)
    response = await chat.run("Go.", max_rounds=999)
    state = json.loads(json.dumps(await response.thread.serialize()))
    start = time.perf_counter()
    thread = await chat.deserialize_thread(state)
    elapsed = time.perf_counter() - start
    assert len(await thread.messages()) == 1000
    assert thread.next_speaker == "writer" and thread.rounds_used == 999
    assert elapsed < 1.0  # the bench measures the real figure (target 50 ms); this box is shared


def _mutate(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**state, **changes}


async def test_malformed_or_foreign_state_is_refused_with_the_field_named() -> None:
    agents, _ = cast(SCRIPTS)
    chat = GroupChat(agents)
    state = await (await chat.run("Go.", max_rounds=1)).thread.serialize()
    with pytest.raises(ThreadStateError, match="not a multi-agent thread state"):
        await chat.deserialize_thread(await agents[0].get_new_thread().serialize())
    with pytest.raises(ThreadStateError, match="rounds_used"):
        await chat.deserialize_thread(_mutate(state, rounds_used=-1))
    with pytest.raises(ThreadStateError, match="schema_version"):
        await chat.deserialize_thread(_mutate(state, schema_version=99))
    with pytest.raises(ThreadStateError, match="next_speaker 'zed'"):
        await chat.deserialize_thread(_mutate(state, next_speaker="zed"))
    with pytest.raises(ThreadStateError, match="participants"):
        await GroupChat(agents[:2]).deserialize_thread(state)
    participants = dict(state["participants"])
    participants["writer"] = {"type": "nonsense"}
    with pytest.raises(ThreadStateError):
        await chat.deserialize_thread(_mutate(state, participants=participants))
    # Restoring twice never duplicates anything.
    once = await chat.deserialize_thread(state)
    twice = await chat.deserialize_thread(state)
    assert shape(await once.messages()) == shape(await twice.messages())
