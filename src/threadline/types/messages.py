"""``ChatMessage`` and ``Role``: the unit every thread, store and client speaks in."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from threadline.exceptions import MessageFormatError
from threadline.types.contents import (
    Content,
    JSONValue,
    TextContent,
    content_from_dict,
    content_to_dict,
)

__all__ = ["ChatMessage", "Role", "new_message_id"]


class Role(StrEnum):
    """Who wrote a message. Compares equal to its string value (``Role.USER == "user"``)."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


_ROLES: dict[str, Role] = {r.value: r for r in Role}


def new_message_id() -> str:
    """A fresh random message id."""
    return "msg_" + os.urandom(12).hex()


@dataclass(frozen=True, slots=True, init=False)
class ChatMessage:
    """One message of a conversation: a role, its contents and who wrote it.

    Immutable, so a message can be shared by a thread, its forks and a model request without
    copying. ``message_id`` is assigned once and kept by every store, so reloading or re-importing
    a thread can recognise messages it already holds.

    Args:
        role: a :class:`Role` or its string value.
        text: shorthand for ``contents=[TextContent(text)]``; appended after ``contents``.
        contents: the message's parts, in order.
        author_name: which participant wrote it, e.g. an agent's name in a group chat.
        message_id: a stable id; a new one is generated when omitted.
    """

    role: Role
    contents: tuple[Content, ...]
    author_name: str | None
    message_id: str

    def __init__(
        self,
        role: Role | str,
        text: str | None = None,
        *,
        contents: Iterable[Content] | None = None,
        author_name: str | None = None,
        message_id: str | None = None,
    ) -> None:
        resolved = role if type(role) is Role else _ROLES.get(role)  # pyright: ignore[reportArgumentType]
        if resolved is None:
            raise MessageFormatError(
                f"unknown role {role!r}; expected one of {', '.join(_ROLES)}"
            )
        parts: tuple[Content, ...] = tuple(contents) if contents is not None else ()
        if text is not None:
            parts = (*parts, TextContent(text))
        setattr_ = object.__setattr__
        setattr_(self, "role", resolved)
        setattr_(self, "contents", parts)
        setattr_(self, "author_name", author_name)
        setattr_(self, "message_id", message_id if message_id is not None else new_message_id())

    @property
    def text(self) -> str:
        """The message's text contents joined by spaces; ``""`` when it has none."""
        texts = [c.text for c in self.contents if type(c) is TextContent]
        return texts[0] if len(texts) == 1 else " ".join(texts)

    def to_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form; ``author_name`` is left out when unset."""
        d: dict[str, JSONValue] = {
            "role": self.role.value,
            "contents": [content_to_dict(c) for c in self.contents],
            "message_id": self.message_id,
        }
        if self.author_name is not None:
            d["author_name"] = self.author_name
        return d

    @classmethod
    def from_dict(cls, d: object) -> ChatMessage:
        """Rebuild a message from :meth:`to_dict`'s form; raises ``MessageFormatError``."""
        if not isinstance(d, Mapping):
            raise MessageFormatError(f"a message must be a JSON object, got {type(d).__name__}")
        fields: Mapping[str, Any] = d  # pyright: ignore[reportUnknownVariableType]
        unknown = fields.keys() - {"role", "contents", "message_id", "author_name"}
        if unknown:
            raise MessageFormatError(f"message has unknown field(s) {sorted(unknown)}")
        raw_contents = fields.get("contents")
        if not isinstance(raw_contents, list):
            raise MessageFormatError(
                f"message field 'contents' must be a list, got {raw_contents!r}"
            )
        message_id = fields.get("message_id")
        if type(message_id) is not str or not message_id:
            raise MessageFormatError(
                f"message field 'message_id' must be a non-empty string, got {message_id!r}"
            )
        author_name = fields.get("author_name")
        if author_name is not None and type(author_name) is not str:
            raise MessageFormatError(
                f"message field 'author_name' must be a string, got {author_name!r}"
            )
        role = fields.get("role")
        if type(role) is not str:
            raise MessageFormatError(f"message field 'role' must be a string, got {role!r}")
        contents: list[Content] = []
        for index, raw in enumerate(raw_contents):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            try:
                contents.append(content_from_dict(raw))
            except MessageFormatError as exc:
                raise MessageFormatError(f"contents[{index}]: {exc}") from exc
        return cls(role, contents=contents, author_name=author_name, message_id=message_id)


def as_messages(value: str | ChatMessage | Sequence[str | ChatMessage] | None) -> list[ChatMessage]:
    """Normalise what callers may pass as input: text becomes a user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [ChatMessage(Role.USER, value)]
    if isinstance(value, ChatMessage):
        return [value]
    out: list[ChatMessage] = []
    for item in value:
        if isinstance(item, str):
            out.append(ChatMessage(Role.USER, item))
        elif isinstance(item, ChatMessage):  # pyright: ignore[reportUnnecessaryIsInstance]
            out.append(item)
        else:
            raise TypeError(f"expected str or ChatMessage, got {type(item).__name__}")
    return out
