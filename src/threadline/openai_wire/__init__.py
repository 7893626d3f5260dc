"""The OpenAI wire formats as plain JSON dicts, one module per API, for clients and server alike.

The OpenAI clients turn messages into request items and response items back into messages; the
threadline server does the reverse. Working on plain dicts (not the SDK's pydantic models) keeps
this package free of the ``openai`` package, so the server needs no SDK. It sits beside
``types/``: it depends on values, exceptions and tools only, so both ``clients/`` and ``hosting/``
can import it.

Foreign JSON is checked here: a malformed item raises ``MessageFormatError`` naming the offending
field, which the server turns into a 400 error.
"""

from __future__ import annotations

from threadline.openai_wire._common import Item, item_id, result_text, split_system
from threadline.openai_wire.assistants import input_message, message_object, tool_calls_json
from threadline.openai_wire.chat import chat_to_messages, messages_to_chat, tool_to_chat
from threadline.openai_wire.responses import items_to_messages, messages_to_items, tool_to_responses

__all__ = [
    "Item",
    "chat_to_messages",
    "input_message",
    "item_id",
    "items_to_messages",
    "message_object",
    "messages_to_chat",
    "messages_to_items",
    "result_text",
    "split_system",
    "tool_calls_json",
    "tool_to_chat",
    "tool_to_responses",
]
