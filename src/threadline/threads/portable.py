"""Self-contained thread files: a thread exported with its messages inline, validated on import.

``thread.serialize()`` of a thread in a database holds only a *reference* to its messages (the
SQLite store saves its file path and thread id), which is useless on another machine. The portable
form is the same serialized thread with the store swapped for an in-memory store holding the
messages, so it restores anywhere, e.g. with ``agent.deserialize_thread(state)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from threadline.exceptions import ThreadStateError
from threadline.threads.state import ThreadState, parse_thread_state
from threadline.threads.stores.memory import ChatMessageList, messages_from_state
from threadline.threads.thread import AgentThread
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage

__all__ = ["PortableThread", "parse_portable_thread", "portable_thread_state"]


async def portable_thread_state(thread: AgentThread) -> dict[str, JSONValue]:
    """``thread.serialize()`` with the messages inline (an in-memory store), whatever its store.

    Service-managed threads are returned as serialized: their messages live in the service.
    """
    state = await thread.serialize()
    store = thread.message_store
    if store is not None:
        messages = await store.list_messages()
        state["store"] = {
            "kind": ChatMessageList.kind,
            "state": await ChatMessageList(messages).serialize(),
        }
    return state


@dataclass(frozen=True, slots=True, kw_only=True)
class PortableThread:
    """A validated portable thread: its parsed state and its messages."""

    state: ThreadState
    messages: list[ChatMessage]


def parse_portable_thread(state: object) -> PortableThread:
    """Validate a portable thread state, down to every message.

    Raises:
        ThreadStateError: the state is malformed, names a service-managed thread, or keeps its
            messages elsewhere instead of inline; the message says which and where.
    """
    parsed = parse_thread_state(state)
    if parsed.service_thread_id is not None:
        raise ThreadStateError(
            f"thread {parsed.thread_id!r} is kept by service {parsed.service!r}; only local "
            "threads, whose messages are in the file, can be imported"
        )
    if parsed.store_kind is None or parsed.store_state is None:
        messages: list[ChatMessage] = []
    elif parsed.store_kind == ChatMessageList.kind:
        store_state: Mapping[str, Any] = parsed.store_state
        messages = messages_from_state(
            store_state.get("messages", []), where="store.state.messages"
        )
    else:
        raise ThreadStateError(
            f"thread {parsed.thread_id!r} refers to messages kept in a {parsed.store_kind!r} "
            "store instead of holding them; export it with portable_thread_state() "
            "(`threadline threads export`), which writes the messages into the file"
        )
    return PortableThread(state=parsed, messages=messages)
