"""Assistants threads: a thread of the server's database, its messages also ``message`` records.

Shared by the thread routes (:mod:`assistants`) and the run routes (:mod:`runs`), so neither
imports the other's handlers. An Assistants thread is a thread like a conversation; its
user-visible messages are also kept as ``message`` records (the API's ``thread.message`` objects,
with the run and assistant that produced them), while tool calls and results live only in the
thread, where the agent sees them.
"""

from __future__ import annotations

import time
from typing import Any, cast

from threadline.exceptions import MessageFormatError
from threadline.hosting._request import ServerState, optional_object
from threadline.hosting._turns import new_id
from threadline.hosting.errors import ApiError
from threadline.openai_wire import input_message, message_object
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.contents import DataContent, TextContent, UriContent
from threadline.types.messages import ChatMessage

__all__ = ["LIST_ALL", "new_thread", "one_message", "thread_messages_from", "user_messages"]

LIST_ALL = 10_000
"""The most objects one list reads before paginating in memory."""


def one_message(item: dict[str, Any], where: str) -> tuple[ChatMessage, dict[str, Any]]:
    """One Assistants input message and its metadata; 400 naming the field when malformed."""
    try:
        message = input_message(item, where)
    except (MessageFormatError, ValueError) as exc:
        raise ApiError.bad(f"Invalid '{where}': {exc}", param=where) from None
    metadata = optional_object(item, "metadata") or {}
    return message, metadata


def user_messages(raw: object, param: str) -> list[tuple[ChatMessage, dict[str, Any]]]:
    """Messages as the Assistants API takes them (``role``, ``content``, ``metadata``)."""
    if not isinstance(raw, list):
        raise ApiError.bad(f"'{param}' must be a list of messages.", param=param)
    out: list[tuple[ChatMessage, dict[str, Any]]] = []
    for i, entry in enumerate(cast(list[object], raw)):
        where = f"{param}[{i}]"
        if not isinstance(entry, dict):
            raise ApiError.bad(f"'{where}' must be an object.", param=where)
        out.append(one_message(cast(dict[str, Any], entry), where))
    return out


def thread_messages_from(
    owner: str,
    thread_id: str,
    messages: list[tuple[ChatMessage, dict[str, Any]]],
    *,
    run_id: str | None = None,
    assistant_id: str | None = None,
) -> list[ThreadRecord]:
    """``message`` records (``thread.message`` objects) for messages that show text or images."""
    now = time.time()
    out: list[ThreadRecord] = []
    for i, (message, metadata) in enumerate(messages):
        if not any(type(c) in (TextContent, DataContent, UriContent) for c in message.contents):
            continue
        created = now + i * 1e-6  # distinct, ordered timestamps within one write
        body = message_object(
            message,
            thread_id,
            created_at=created,
            run_id=run_id,
            assistant_id=assistant_id,
            metadata=metadata,
        )
        out.append(
            ThreadRecord(
                kind="message",
                id=message.message_id,
                owner=owner,
                parent=thread_id,
                body=body,
                created_at=created,
            )
        )
    return out


async def new_thread(state: ServerState, owner: str, body: dict[str, Any]) -> ThreadRecord:
    """Create a thread from a ``POST /v1/threads`` body (``messages``, ``metadata``)."""
    initial = user_messages(body.get("messages") or [], "messages")
    metadata = optional_object(body, "metadata") or {}
    now = time.time()
    thread_id = new_id("thread")
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": int(now),
        "metadata": metadata,
        "tool_resources": {},
    }
    stored = ThreadRecord(
        kind="thread", id=thread_id, owner=owner, body=thread, thread_id=thread_id, created_at=now
    )
    batch = ThreadBatch().append(thread_id, [m for m, _ in initial], expected_version=0)
    await state.database.commit(batch.put(stored, *thread_messages_from(owner, thread_id, initial)))
    return stored
