"""The Responses (and Conversations) wire format: items to messages and back, tool declarations.

Consecutive function calls join one assistant message and consecutive outputs one tool message,
matching how threadline's agents store them, so a round trip through items keeps a history's shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from threadline.exceptions import MessageFormatError
from threadline.openai_wire._common import (
    Item,
    append_content,
    content_parts,
    item_id,
    parse_output,
    parse_role,
    require,
    result_text,
)
from threadline.tools import FunctionTool
from threadline.types.contents import (
    DataContent,
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["APPROVAL_SERVER_LABEL", "items_to_messages", "messages_to_items", "tool_to_responses"]

APPROVAL_SERVER_LABEL = "threadline"
"""The ``server_label`` of the ``mcp_approval_request`` items a threadline server shows: the
OpenAI wire has one item type for a call waiting for approval, named after MCP."""


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
            elif output and type(content) is FunctionApprovalRequestContent:
                # Output only: a model service is never sent these (they are no model input).
                _flush(items, message, parts, output)
                parts = []
                items.append(
                    {
                        "type": "mcp_approval_request",
                        "id": content.id,
                        "server_label": APPROVAL_SERVER_LABEL,
                        "name": content.function_call.name,
                        "arguments": content.function_call.arguments,
                    }
                )
            elif output and type(content) is FunctionApprovalResponseContent:
                _flush(items, message, parts, output)
                parts = []
                answer: Item = {
                    "type": "mcp_approval_response",
                    "id": "mcpr_" + content.id.removeprefix("apr_"),
                    "approval_request_id": content.id,
                    "approve": content.approved,
                }
                if content.reason is not None:
                    answer["reason"] = content.reason
                items.append(answer)
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
            role = parse_role(item.get("role"), iwhere)
            contents = content_parts(item.get("content"), iwhere)
            mid = item.get("id")
            out.append(
                ChatMessage(
                    role, contents=contents, message_id=mid if isinstance(mid, str) else None
                )
            )
        elif kind == "function_call":
            call = FunctionCallContent(
                call_id=require(item, "call_id", str, iwhere),
                name=require(item, "name", str, iwhere),
                arguments=require(item, "arguments", str, iwhere),
            )
            append_content(out, Role.ASSISTANT, call)
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                raise MessageFormatError(f"{iwhere}.output must be a string")
            result = FunctionResultContent(
                call_id=require(item, "call_id", str, iwhere),
                result=parse_output(output, iwhere + ".output"),
            )
            append_content(out, Role.TOOL, result)
        elif kind == "reasoning":
            continue
        else:
            raise MessageFormatError(f"{iwhere}.type {kind!r} is not supported")
    return out


def tool_to_responses(tool: FunctionTool) -> Item:
    """A tool declaration in the Responses format."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
        "strict": False,
    }
