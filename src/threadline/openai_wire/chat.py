"""The Chat Completions wire format: messages to request messages and back, tool declarations.

The Assistants API declares tools in the same nested form, so :func:`tool_to_chat` serves it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from threadline.exceptions import MessageFormatError
from threadline.openai_wire._common import (
    Item,
    append_content,
    content_parts,
    parse_output,
    parse_role,
    require,
    result_text,
)
from threadline.tools import FunctionTool
from threadline.types.contents import (
    Content,
    DataContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["chat_to_messages", "messages_to_chat", "tool_to_chat"]


def messages_to_chat(messages: Iterable[ChatMessage]) -> list[Item]:
    """Messages as Chat Completions messages; each function result becomes its own tool message."""
    out: list[Item] = []
    for message in messages:
        if message.role == Role.TOOL:
            for content in message.contents:
                if type(content) is FunctionResultContent:
                    out.append(
                        {
                            "role": "tool",
                            "tool_call_id": content.call_id,
                            "content": result_text(content),
                        }
                    )
            continue
        calls = [c for c in message.contents if type(c) is FunctionCallContent]
        media = [c for c in message.contents if type(c) is DataContent or type(c) is UriContent]
        entry: Item = {"role": str(message.role)}
        if media and message.role == Role.USER:
            parts: list[Item] = []
            for content in message.contents:
                if type(content) is TextContent:
                    parts.append({"type": "text", "text": content.text})
                elif type(content) is DataContent or type(content) is UriContent:
                    parts.append({"type": "image_url", "image_url": {"url": content.uri}})
            entry["content"] = parts
        else:
            text = message.text
            entry["content"] = text if text or not calls else None
        if calls:
            entry["tool_calls"] = [
                {
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in calls
            ]
        if message.author_name and message.role in (Role.USER, Role.ASSISTANT):
            entry["name"] = message.author_name
        if entry.get("content") is None and not calls:
            continue
        out.append(entry)
    return out


def chat_to_messages(messages: object) -> list[ChatMessage]:
    """Chat Completions request messages as threadline messages.

    Raises:
        MessageFormatError: a message is malformed; the message names it.
    """
    if not isinstance(messages, list) or not messages:
        raise MessageFormatError("messages must be a non-empty list")
    out: list[ChatMessage] = []
    for i, raw in enumerate(cast(list[object], messages)):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise MessageFormatError(f"{where} must be an object")
        entry = cast(dict[str, Any], raw)
        role = parse_role(entry.get("role"), where)
        if role == Role.TOOL:
            content = entry.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(
                    c.text for c in content_parts(content, where) if type(c) is TextContent
                )
            )
            result = FunctionResultContent(
                call_id=require(entry, "tool_call_id", str, where),
                result=parse_output(text, where + ".content"),
            )
            append_content(out, Role.TOOL, result)
            continue
        content = entry.get("content")
        contents: list[Content] = [] if content is None else content_parts(content, where)
        calls: object = entry.get("tool_calls") or []
        if not isinstance(calls, list):
            raise MessageFormatError(f"{where}.tool_calls must be a list")
        for j, raw_call in enumerate(cast(list[object], calls)):
            cwhere = f"{where}.tool_calls[{j}]"
            if not isinstance(raw_call, dict):
                raise MessageFormatError(f"{cwhere} must be an object")
            call = cast(dict[str, Any], raw_call)
            function = require(call, "function", dict, cwhere)
            contents.append(
                FunctionCallContent(
                    call_id=require(call, "id", str, cwhere),
                    name=require(function, "name", str, cwhere + ".function"),
                    arguments=require(function, "arguments", str, cwhere + ".function"),
                )
            )
        if not contents:
            raise MessageFormatError(
                f"{where} needs 'content' (or 'tool_calls' from the assistant)"
            )
        name = entry.get("name")
        out.append(
            ChatMessage(
                role, contents=contents, author_name=name if isinstance(name, str) else None
            )
        )
    return out


def tool_to_chat(tool: FunctionTool) -> Item:
    """A tool declaration in the Chat Completions (and Assistants) format."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        },
    }
