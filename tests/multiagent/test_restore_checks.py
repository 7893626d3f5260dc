"""Restoring a multi-agent state refuses participants of another user or conversation, and a
``version`` that contradicts the transcript (issue 20 item 13), naming the field.

Before, a state whose top-level ``user_id`` said alice restored a participant thread of mallory's
(that agent then ran with mallory's memories), a participant thread spliced in from another
conversation, and a ``version`` that every later run refused with a misleading
``ConcurrentThreadUpdateError``. Driven through the public API, with states as a user would save
them (plain JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from threadline import (
    ConcurrentThreadUpdateError,
    FunctionCallContent,
    GroupChat,
    Handoff,
    SequentialProcess,
    SQLiteChatMessageStore,
    ThreadStateError,
)

from .conftest import cast

KINDS = ["group_chat", "sequential", "handoff"]


def _runner(kind: str, **kw: Any) -> GroupChat | Handoff:
    transfer = [FunctionCallContent(call_id="h1", name="transfer_to_b", arguments="{}")]
    if kind == "handoff":
        agents, _ = cast({"a": [transfer, transfer], "b": ["b1", "b2"]})
        return Handoff(agents, **kw)
    agents, _ = cast({"a": ["a1", "a2"], "b": ["b1", "b2"]})
    if kind == "group_chat":
        return GroupChat(agents, max_rounds=2, **kw)
    return SequentialProcess(agents, **kw)


async def _saved(runner: GroupChat | Handoff, user_id: str | None = "alice") -> dict[str, Any]:
    thread = runner.get_new_thread(user_id=user_id)
    await runner.run("Hello.", thread=thread)
    return json.loads(json.dumps(await thread.serialize()))


@pytest.mark.parametrize("kind", KINDS)
async def test_a_participant_thread_of_another_user_is_refused(kind: str) -> None:
    runner = _runner(kind)
    alice = await _saved(runner, "alice")
    mallory = await _saved(_runner(kind), "mallory")
    # Each participant of a new conversation runs as its user.
    restored = await runner.deserialize_thread(alice)
    assert {t.user_id for t in restored.participants.values()} == {"alice"}

    spliced = {
        **alice,
        "participants": {**alice["participants"], "b": mallory["participants"]["b"]},
    }
    with pytest.raises(ThreadStateError, match=r"participants\.b\.user_id.*'mallory'.*'alice'"):
        await runner.deserialize_thread(spliced)
    # Edited to claim alice, it is still another conversation's thread.
    disguised = {**mallory["participants"]["b"], "user_id": "alice"}
    spliced = {**alice, "participants": {**alice["participants"], "b": disguised}}
    with pytest.raises(ThreadStateError, match=r"participants\.b\.thread_id"):
        await runner.deserialize_thread(spliced)
    # An anonymous conversation takes no participant that belongs to someone.
    anonymous = await _saved(_runner(kind), None)
    anonymous["participants"]["a"]["user_id"] = "mallory"
    with pytest.raises(ThreadStateError, match=r"participants\.a\.user_id"):
        await runner.deserialize_thread(anonymous)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_participant_thread_of_another_conversation_of_the_same_user_is_refused(
    kind: str,
) -> None:
    runner = _runner(kind)
    first = await _saved(runner)
    second = await _saved(_runner(kind))
    spliced = {**first, "participants": {**first["participants"], "a": second["participants"]["a"]}}
    with pytest.raises(ThreadStateError, match=r"participants\.a\.thread_id.*another conversation"):
        await runner.deserialize_thread(spliced)
    # Two participants sharing one thread is refused too.
    shared = {
        **first,
        "participants": {"a": first["participants"]["a"], "b": first["participants"]["a"]},
    }
    with pytest.raises(ThreadStateError, match=r"participants\.b\.thread_id"):
        await runner.deserialize_thread(shared)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fork_is_a_conversation_of_its_own_and_restores(kind: str) -> None:
    runner = _runner(kind)
    thread = runner.get_new_thread(user_id="alice")
    await runner.run("Hello.", thread=thread)
    branch = await thread.fork()
    assert branch.id != thread.id
    restored = await runner.deserialize_thread(json.loads(json.dumps(await branch.serialize())))
    assert [t.id for t in restored.participants.values()] == [
        t.id for t in branch.participants.values()
    ]
    mixed = await thread.serialize()
    mixed["participants"]["a"] = (await branch.serialize())["participants"]["a"]
    with pytest.raises(ThreadStateError, match=r"participants\.a\.thread_id"):
        await runner.deserialize_thread(mixed)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_version_that_contradicts_an_in_memory_transcript_is_refused(kind: str) -> None:
    runner = _runner(kind)
    state = await _saved(runner)
    held = len(state["transcript"]["state"]["messages"])
    assert state["version"] == held
    for version in (held + 5, held - 1, 0):
        with pytest.raises(
            ThreadStateError, match=rf"field 'version' is {version}.*transcript holds {held}"
        ):
            await runner.deserialize_thread({**state, "version": version})


async def test_a_durable_transcript_refuses_a_version_past_its_end_but_not_a_stale_copy(
    tmp_path: Path,
) -> None:
    db = tmp_path / "chat.db"
    runner = _runner("group_chat", transcript_store_factory=lambda: SQLiteChatMessageStore(db))
    thread = runner.get_new_thread(user_id="alice")
    await runner.run("Hello.", thread=thread, max_rounds=1)
    stale = json.loads(json.dumps(await thread.serialize()))
    await runner.run(thread=thread, max_rounds=1)  # the conversation moves on elsewhere
    held = stale["version"] + 1
    with pytest.raises(ThreadStateError, match=rf"'version' is 99.*transcript holds {held}"):
        await runner.deserialize_thread({**stale, "version": 99})
    # A copy saved before the conversation moved on is a stale copy, not a damaged one: it
    # restores, and continuing it is refused as a concurrent update (docs/multiagent.md).
    old = await runner.deserialize_thread(stale)
    with pytest.raises(ConcurrentThreadUpdateError):
        await runner.run(thread=old)


async def test_a_handoff_state_whose_bookkeeping_contradicts_the_transcript_is_refused() -> None:
    runner = _runner("handoff")
    state = await _saved(runner)
    assert state["runner_state"]["seen"]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"seen": {"a": state["version"] + 1}}, r"runner_state\.seen\.a"),
        ({"seen": {"zed": 1}}, r"runner_state\.seen\.zed.*not a participant"),
        ({"seen": {"a": "3"}}, r"runner_state\.seen\.a"),
        ({"handoffs": -1}, r"runner_state\.handoffs"),
        ({"pairs": "a|b"}, r"runner_state\.pairs"),
        ({"extra": 1}, r"runner_state\.extra"),
    ]
    for change, field in bad:
        runner_state = {**state["runner_state"], **change}
        with pytest.raises(ThreadStateError, match=field):
            await runner.deserialize_thread({**state, "runner_state": runner_state})


async def test_a_conversation_id_that_is_not_a_valid_thread_id_is_refused() -> None:
    runner = _runner("group_chat")
    state = await _saved(runner)
    with pytest.raises(ThreadStateError, match="thread_id '../../etc/x' is not a valid thread id"):
        await runner.deserialize_thread({**state, "thread_id": "../../etc/x"})


@pytest.mark.parametrize("kind", KINDS)
async def test_running_a_restored_thread_leaves_the_saved_state_unchanged(kind: str) -> None:
    runner = _runner(kind)
    thread = runner.get_new_thread(user_id="alice")
    await runner.run("Hello.", thread=thread, max_rounds=1)
    state = json.loads(json.dumps(await thread.serialize()))
    before = json.dumps(state, sort_keys=True)
    restored = await runner.deserialize_thread(state)
    await runner.run(thread=restored)
    assert json.dumps(state, sort_keys=True) == before
