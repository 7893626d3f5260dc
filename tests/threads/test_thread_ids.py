"""One rule for thread ids, wherever they enter: states, threads, stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline import ChatAgent, ScriptedChatClient
from threadline.exceptions import ThreadStateError
from threadline.threads.state import check_thread_id, parse_thread_state
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.threads.thread import AgentThread, new_thread_id

VALID = [
    new_thread_id(),
    "thread_0123abcd",
    "conv_68b1c2d3e4f5",
    "resp_abc123",
    "msg_1",
    "a",
    "x" * 128,
    "team.alpha:thread-7",
    "_private",
]
INVALID = [
    "",
    "../../etc/passwd",
    "a/b",
    "a\x00b",
    "line\nbreak",
    "\x1b[2J\x1b[Hpwned",
    "x" * 129,
    "x" * 1_000_000,
    "-rf",
    ".hidden",
    ":colon",
    "café",
    " padded",
    "tab\t",
]


def state_with(thread_id: str) -> dict[str, object]:
    return {
        "type": "threadline.thread",
        "schema_version": 1,
        "thread_id": thread_id,
        "binding": {},
    }


@pytest.mark.parametrize("thread_id", VALID)
def test_valid_ids_pass_everywhere(thread_id: str, tmp_path: Path) -> None:
    assert check_thread_id(thread_id) == thread_id
    assert parse_thread_state(state_with(thread_id)).thread_id == thread_id
    assert AgentThread(thread_id=thread_id).id == thread_id
    assert SQLiteChatMessageStore(tmp_path / "t.db", thread_id=thread_id).thread_id == thread_id


@pytest.mark.parametrize("thread_id", INVALID, ids=range(len(INVALID)))
def test_invalid_ids_are_refused_everywhere(thread_id: str, tmp_path: Path) -> None:
    with pytest.raises(ThreadStateError, match="thread_id") as info:
        parse_thread_state(state_with(thread_id))
    message = str(info.value)
    assert len(message) < 400  # a megabyte id is cut, not echoed
    assert "\x1b" not in message and "\x00" not in message and "\n" not in message
    if not thread_id:
        return  # an empty id means "make one" to constructors
    with pytest.raises(ValueError, match="not a valid thread id"):
        AgentThread(thread_id=thread_id)
    with pytest.raises(ValueError, match="not a valid thread id"):
        SQLiteChatMessageStore(tmp_path / "t.db", thread_id=thread_id)
    assert not (tmp_path / "t.db").exists()


async def test_invalid_ids_inside_store_state_are_refused(tmp_path: Path) -> None:
    store = SQLiteChatMessageStore(tmp_path / "t.db", thread_id="thread_ok")
    state = await AgentThread(message_store=store, thread_id="thread_ok").serialize()
    state["store"] = {
        "kind": "sqlite",
        "state": {"path": str(tmp_path / "t.db"), "thread_id": "../x"},
    }
    with pytest.raises(ThreadStateError, match=r"sqlite store state's thread_id '\.\./x'"):
        await ChatAgent(ScriptedChatClient([])).deserialize_thread(state)
    with pytest.raises(ThreadStateError, match="service_thread_id"):
        parse_thread_state(
            {**state_with("t"), "binding": {"service": "openai"}, "service_thread_id": "a\nb"}
        )
