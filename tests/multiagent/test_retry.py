"""A participant's model fails once and the run is retried: nothing is shown or stored twice.

Issue 20 item 2: in a ``Handoff``, the target's model raised (a rate limit), the run was retried,
and the target's thread then held the handoff messages twice (same ids), its model was sent them
twice, and the conversation could no longer be restored. The same retry is checked for a group
chat and a sequential process. Driven through the public API only.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from threadline import (
    AgentThread,
    ChatMessage,
    ClientError,
    FunctionCallContent,
    GroupChat,
    Handoff,
    ScriptedChatClient,
    SequentialProcess,
)

from .conftest import cast, shape, thread_shape


def _runner(kind: str, agents: Any) -> GroupChat | Handoff:
    if kind == "handoff":
        return Handoff(agents, start="a")
    if kind == "group_chat":
        return GroupChat(agents, max_rounds=2)
    return SequentialProcess(agents)


def _scripts(kind: str, *, fail: bool) -> dict[str, list[Any]]:
    first: list[Any] = (
        [[FunctionCallContent(call_id="h1", name="transfer_to_b", arguments="{}")]]
        if kind == "handoff"
        else ["a1"]
    )
    b: list[Any] = ["b1", "b2"]
    if fail:
        b.insert(0, ClientError("rate limited, retry in 1s"))
    return {"a": first, "b": b}


async def _messages(thread: AgentThread) -> list[ChatMessage]:
    assert thread.message_store is not None
    return await thread.message_store.list_messages()


def _no_id_twice(messages: list[ChatMessage]) -> None:
    twice = [i for i, n in Counter(m.message_id for m in messages).items() if n > 1]
    assert not twice, f"message ids stored twice: {twice}"


@pytest.mark.parametrize("kind", ["handoff", "group_chat", "sequential"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_retried_run_shows_and_stores_nothing_twice(kind: str, stream: bool) -> None:
    # What an uninterrupted run gives: the reference.
    agents, clients = cast(_scripts(kind, fail=False))
    plain = _runner(kind, agents)
    reference = await plain.run("Is my invoice paid?")
    expected_b = await thread_shape(reference.thread.participants["b"])
    expected_call = shape(clients["b"].calls[0].messages)

    agents, clients = cast(_scripts(kind, fail=True))
    runner = _runner(kind, agents)
    thread = runner.get_new_thread()
    with pytest.raises(ClientError, match="rate limited"):
        if stream:
            async for _ in runner.run_stream("Is my invoice paid?", thread=thread):
                pass
        else:
            await runner.run("Is my invoice paid?", thread=thread)
    assert thread.next_speaker == "b"

    # The retry: the same run, continued (for b's turn: the group chat would go on to a).
    if stream:
        texts = [u.text async for u in runner.run_stream(thread=thread, max_rounds=1) if u.text]
        assert "".join(texts) == "b1"
    else:
        retried = await runner.run(thread=thread, max_rounds=1)
        assert retried.last_text == "b1"

    b_messages = await _messages(thread.participants["b"])
    _no_id_twice(b_messages)
    assert shape(b_messages) == expected_b
    # The model was sent the conversation once, on the failed call and on the retry alike.
    assert [shape(c.messages) for c in clients["b"].calls] == [expected_call, expected_call]
    _no_id_twice(list(clients["b"].calls[1].messages))
    assert shape(await thread.messages()) == shape(await reference.thread.messages())

    # And the conversation can still be saved and restored, then continued.
    state = json.loads(json.dumps(await thread.serialize()))
    restored = await runner.deserialize_thread(state)
    assert await thread_shape(restored.participants["b"]) == expected_b


async def test_a_handoff_stream_abandoned_in_the_target_turn_is_not_shown_twice() -> None:
    agents, clients = cast(_scripts("handoff", fail=False))
    handoff = Handoff(agents, start="a")
    thread = handoff.get_new_thread()
    stream = handoff.run_stream("Is my invoice paid?", thread=thread)
    async for update in stream:
        if update.author_name == "b":
            break  # the reader goes away in the middle of b's answer
    await stream.aclose()
    assert thread.next_speaker == "b"
    clients["b"] = ScriptedChatClient(["b1 again"])
    agents[1].chat_client = clients["b"]
    retried = await handoff.run(thread=thread, max_rounds=1)
    assert retried.last_text == "b1 again"
    b_messages = await _messages(thread.participants["b"])
    _no_id_twice(b_messages)
    assert [m.text for m in b_messages][-1] == "b1 again"
    _no_id_twice(list(clients["b"].calls[0].messages))
