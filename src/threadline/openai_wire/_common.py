"""What the OpenAI wire formats share: result text, item ids and the checks of foreign JSON.

A private module of :mod:`threadline.openai_wire`; the API modules build on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from threadline.exceptions import MessageFormatError
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
    "Item",
    "append_content",
    "content_parts",
    "item_id",
    "parse_output",
    "parse_role",
    "require",
    "result_text",
    "split_system",
]

Item = dict[str, Any]
"""One wire object (item, message, part) as plain JSON."""


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


def require(d: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = d.get(key)
    if not isinstance(value, kind):
        raise MessageFormatError(
            f"{where}.{key} must be a {kind.__name__}, got {type(value).__name__} ({value!r:.60})"
        )
    return value


def parse_role(value: object, where: str) -> Role:
    if value == "developer":
        return Role.SYSTEM
    try:
        return Role(cast(str, value))
    except ValueError:
        raise MessageFormatError(
            f"{where}.role must be one of user, assistant, system, developer, got {value!r}"
        ) from None


def parse_output(text: str, where: str) -> JSONValue:
    """A tool result's text as JSON when it is JSON, else the text itself.

    Raises:
        MessageFormatError: the text is JSON nested too deeply to read (``where`` names it), as
            the same nesting in a request body is refused.
    """
    try:
        return cast(JSONValue, json.loads(text))
    except RecursionError:
        raise MessageFormatError(
            f"{where} is JSON nested too deeply to read; flatten it or send it as plain text"
        ) from None
    except ValueError:
        return text


def content_parts(value: object, where: str) -> list[Content]:
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
            out.append(TextContent(require(part, key, str, pwhere)))
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


def append_content(out: list[ChatMessage], role: Role, content: Content) -> None:
    kind = type(content)
    if out and out[-1].role == role and all(type(c) is kind for c in out[-1].contents):
        last = out.pop()
        out.append(
            ChatMessage(role, contents=[*last.contents, content], message_id=last.message_id)
        )
    else:
        out.append(ChatMessage(role, contents=[content]))
