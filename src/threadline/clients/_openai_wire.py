"""Conversion between threadline messages and the OpenAI wire formats, as plain JSON dicts.

Both sides of the wire use it: the OpenAI clients turn messages into request items and response
items back into messages, and the threadline server does the reverse. Working on plain dicts (not
the SDK's pydantic models) keeps it free of the ``openai`` package, so the server needs no SDK.

Foreign JSON is checked here: a malformed item raises ``MessageFormatError`` naming the offending
field, which the server turns into a 400 error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from threadline.exceptions import MessageFormatError
from threadline.tools import FunctionTool
from threadline.types.contents import (
    Content,
    DataContent,
    FunctionCallContent,
    FunctionResultContent,
    JSONValue,
    TextContent,
    UriContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "chat_to_messages",
    "item_id",
    "messages_to_chat",
    "messages_to_items",
    "items_to_messages",
    "result_text",
    "split_system",
    "tool_to_chat",
    "tool_to_responses",
]

Item = dict[str, Any]


def result_text(content: FunctionResultContent) -> str:
    """A function result as the string both APIs carry: text as is, anything else as JSON."""
    if content.exception is not None:
        return f"Error: {content.exception}"
    if isinstance(content.result, str):
        return content.result
    return json.dumps(content.result, ensure_ascii=False)


def split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    """Leading system messages joined as instructions, and the rest."""
    system: list[str] = []
    rest: list[ChatMessage] = []
    for message in messages:
        if message.role == Role.SYSTEM and not rest:
            system.append(message.text)
        else:
            rest.append(message)
    return ("\n\n".join(system) if system else None), rest


def item_id(message: ChatMessage, content: Content | None = None) -> str:
    """A stable item id: the message id, or one derived from a function call's id."""
    if type(content) is FunctionCallContent:
        return "fc_" + content.call_id.removeprefix("call_")
    if type(content) is FunctionResultContent:
        return "fco_" + content.call_id.removeprefix("call_")
    return message.message_id


# -- Responses items ------------------------------------------------------------------------------


def _media_part(content: DataContent | UriContent) -> Item | None:
    media = content.media_type or ""
    url = content.uri
    if media.startswith("image/") or (type(content) is UriContent and not media):
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if type(content) is DataContent:
        return {"type": "input_file", "file_data": url, "filename": "file"}
    return None


def messages_to_items(messages: Iterable[ChatMessage], *, output: bool = False) -> list[Item]:
    """Messages as Responses items (``output``: with the ids and status of output items).

    A message's text and media become one ``message`` item; each function call and function result
    becomes its own item, as the Responses API models them. Contents with no form here (usage,
    errors) are skipped.
    """
    items: list[Item] = []
    for message in messages:
        parts: list[Item] = []
        assistant = message.role == Role.ASSISTANT
        for content in message.contents:
            if type(content) is TextContent:
                if assistant:
                    parts.append({"type": "output_text", "text": content.text, "annotations": []})
                else:
                    parts.append({"type": "input_text", "text": content.text})
            elif type(content) is DataContent or type(content) is UriContent:
                part = _media_part(content)
                if part is not None and not assistant:
                    parts.append(part)
            elif type(content) is FunctionCallContent:
                _flush(items, message, parts, output)
                parts = []
                item: Item = {
                    "type": "function_call",
                    "call_id": content.call_id,
                    "name": content.name,
                    "arguments": content.arguments,
                }
                if output:
                    item["id"] = item_id(message, content)
                    item["status"] = "completed"
                items.append(item)
            elif type(content) is FunctionResultContent:
                _flush(items, message, parts, output)
                parts = []
                result: Item = {
                    "type": "function_call_output",
                    "call_id": content.call_id,
                    "output": result_text(content),
                }
                if output:
                    result["id"] = item_id(message, content)
                    result["status"] = "completed"
                items.append(result)
        _flush(items, message, parts, output)
    return items


def _flush(items: list[Item], message: ChatMessage, parts: list[Item], output: bool) -> None:
    if not parts:
        return
    role = "developer" if message.role == Role.SYSTEM else str(message.role)
    if role == "tool":
        role = "user"
    if output:
        items.append(
            {
                "type": "message",
                "id": message.message_id,
                "role": role,
                "status": "completed",
                "content": parts,
            }
        )
    elif role == "assistant":
        # Input form of a past answer: plain text, no item id the service would try to resolve.
        text = "".join(p["text"] for p in parts if p["type"] == "output_text")
        items.append({"type": "message", "role": role, "content": text})
    else:
        items.append({"type": "message", "role": role, "content": parts})


def _require(d: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = d.get(key)
    if not isinstance(value, kind):
        raise MessageFormatError(
            f"{where}.{key} must be a {kind.__name__}, got {type(value).__name__} ({value!r:.60})"
        )
    return value


def _role(value: object, where: str) -> Role:
    if value == "developer":
        return Role.SYSTEM
    try:
        return Role(cast(str, value))
    except ValueError:
        raise MessageFormatError(
            f"{where}.role must be one of user, assistant, system, developer, got {value!r}"
        ) from None


def _parse_output(text: str) -> JSONValue:
    try:
        return cast(JSONValue, json.loads(text))
    except ValueError:
        return text


def _content_parts(value: object, where: str) -> list[Content]:
    if isinstance(value, str):
        return [TextContent(value)]
    if not isinstance(value, list):
        raise MessageFormatError(f"{where}.content must be a string or a list of parts")
    out: list[Content] = []
    for j, raw in enumerate(cast(list[object], value)):
        pwhere = f"{where}.content[{j}]"
        if not isinstance(raw, dict):
            raise MessageFormatError(f"{pwhere} must be an object")
        part = cast(dict[str, Any], raw)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "refusal"):
            key = "refusal" if kind == "refusal" else "text"
            out.append(TextContent(_require(part, key, str, pwhere)))
        elif kind in ("input_image", "image_url"):
            url = part.get("image_url")
            if isinstance(url, dict):
                url = cast(dict[str, Any], url).get("url")
            if not isinstance(url, str):
                raise MessageFormatError(f"{pwhere}.image_url must be a URL string")
            out.append(
                DataContent.from_uri(url) if url.startswith("data:") else UriContent(uri=url)
            )
        elif kind == "input_file" and isinstance(part.get("file_data"), str):
            out.append(DataContent.from_uri(part["file_data"]))
        else:
            raise MessageFormatError(f"{pwhere}.type {kind!r} is not supported")
    return out


def items_to_messages(items: object, *, where: str = "input") -> list[ChatMessage]:
    """Responses input or output items as messages.

    Accepts a string (one user message) or a list of items in any shape the API accepts: easy
    messages (``{"role", "content"}``), ``message`` items, ``function_call`` and
    ``function_call_output``. Consecutive function calls join one assistant message and consecutive
    outputs one tool message, matching how threadline's agents store them.

    Raises:
        MessageFormatError: an item is malformed; the message names it.
    """
    if isinstance(items, str):
        return [ChatMessage(Role.USER, items)]
    if not isinstance(items, list):
        raise MessageFormatError(f"{where} must be a string or a list of items")
    out: list[ChatMessage] = []
    for i, raw in enumerate(cast(list[object], items)):
        iwhere = f"{where}[{i}]"
        if not isinstance(raw, dict):
            raise MessageFormatError(f"{iwhere} must be an object")
        item = cast(dict[str, Any], raw)
        kind = item.get("type", "message")
        if kind == "message":
            role = _role(item.get("role"), iwhere)
            contents = _content_parts(item.get("content"), iwhere)
            mid = item.get("id")
            out.append(
                ChatMessage(
                    role, contents=contents, message_id=mid if isinstance(mid, str) else None
                )
            )
        elif kind == "function_call":
            call = FunctionCallContent(
                call_id=_require(item, "call_id", str, iwhere),
                name=_require(item, "name", str, iwhere),
                arguments=_require(item, "arguments", str, iwhere),
            )
            _append_content(out, Role.ASSISTANT, call)
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                raise MessageFormatError(f"{iwhere}.output must be a string")
            result = FunctionResultContent(
                call_id=_require(item, "call_id", str, iwhere), result=_parse_output(output)
            )
            _append_content(out, Role.TOOL, result)
        elif kind == "reasoning":
            continue
        else:
            raise MessageFormatError(f"{iwhere}.type {kind!r} is not supported")
    return out


def _append_content(out: list[ChatMessage], role: Role, content: Content) -> None:
    kind = type(content)
    if out and out[-1].role == role and all(type(c) is kind for c in out[-1].contents):
        last = out.pop()
        out.append(
            ChatMessage(role, contents=[*last.contents, content], message_id=last.message_id)
        )
    else:
        out.append(ChatMessage(role, contents=[content]))


# -- Chat Completions messages --------------------------------------------------------------------


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
        role = _role(entry.get("role"), where)
        if role == Role.TOOL:
            content = entry.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(
                    c.text for c in _content_parts(content, where) if type(c) is TextContent
                )
            )
            result = FunctionResultContent(
                call_id=_require(entry, "tool_call_id", str, where), result=_parse_output(text)
            )
            _append_content(out, Role.TOOL, result)
            continue
        content = entry.get("content")
        contents: list[Content] = [] if content is None else _content_parts(content, where)
        calls: object = entry.get("tool_calls") or []
        if not isinstance(calls, list):
            raise MessageFormatError(f"{where}.tool_calls must be a list")
        for j, raw_call in enumerate(cast(list[object], calls)):
            cwhere = f"{where}.tool_calls[{j}]"
            if not isinstance(raw_call, dict):
                raise MessageFormatError(f"{cwhere} must be an object")
            call = cast(dict[str, Any], raw_call)
            function = _require(call, "function", dict, cwhere)
            contents.append(
                FunctionCallContent(
                    call_id=_require(call, "id", str, cwhere),
                    name=_require(function, "name", str, cwhere + ".function"),
                    arguments=_require(function, "arguments", str, cwhere + ".function"),
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


# -- tools ----------------------------------------------------------------------------------------


def tool_to_responses(tool: FunctionTool) -> Item:
    """A tool declaration in the Responses format."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
        "strict": False,
    }


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
