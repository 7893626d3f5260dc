"""The Assistants wire format: ``thread.message`` objects, their input form, and tool calls.

Assistants messages carry text and images only; tool calls and results travel in a run's
``required_action`` and ``submit_tool_outputs``, never as messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from threadline.exceptions import MessageFormatError
from threadline.openai_wire._common import Item
from threadline.openai_wire.responses import items_to_messages
from threadline.types.contents import DataContent, FunctionCallContent, TextContent, UriContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["input_message", "message_object", "tool_calls_json"]


def input_message(item: dict[str, Any], where: str) -> ChatMessage:
    """A message as the Assistants API takes it (``role``, ``content``: text or parts).

    Raises:
        MessageFormatError: the message is malformed; the message names the field.
    """
    role = item.get("role")
    if role not in ("user", "assistant"):
        raise MessageFormatError(f"{where}.role must be 'user' or 'assistant', got {role!r}")
    content = item.get("content")
    if isinstance(content, list):
        parts: list[Any] = []
        for part in cast(list[Any], content):
            if isinstance(part, dict) and cast(Item, part).get("type") == "image_url":
                parts.append(
                    {"type": "input_image", "image_url": cast(Item, part).get("image_url")}
                )
            else:
                parts.append(part)
        content = parts
    wire = [{"type": "message", "role": role, "content": content}]
    return items_to_messages(wire, where=where)[0]


def message_object(
    message: ChatMessage,
    thread_id: str,
    *,
    created_at: float,
    run_id: str | None = None,
    assistant_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    status: str = "completed",
) -> Item:
    """A message as a ``thread.message`` object (text and images; nothing else shows)."""
    content: list[Item] = []
    for part in message.contents:
        if type(part) is TextContent:
            content.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif type(part) is DataContent or type(part) is UriContent:
            content.append({"type": "image_url", "image_url": {"url": part.uri, "detail": "auto"}})
    return {
        "id": message.message_id,
        "object": "thread.message",
        "created_at": int(created_at),
        "thread_id": thread_id,
        "role": "assistant" if message.role == Role.ASSISTANT else "user",
        "content": content,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": [],
        "metadata": metadata or {},
        "status": status,
        "incomplete_details": None,
        "completed_at": int(created_at) if status == "completed" else None,
        "incomplete_at": None,
    }


def tool_calls_json(calls: Iterable[FunctionCallContent]) -> list[Item]:
    """Function calls in the nested form of a run's ``required_action`` (and Chat Completions)."""
    return [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in calls
    ]
