"""``ChatMessage`` and ``Role``: the unit every thread, store and client speaks in."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, cast

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


class ChatMessage:
    """One message of a conversation: a role, its contents and who wrote it.

    Immutable, so a message can be shared by a thread, its forks and a model request without
    copying. ``message_id`` is assigned once and kept by every store, so reloading or re-importing
    a thread can recognise messages it already holds.

    Written by hand rather than as a frozen dataclass: threads restore thousands of messages at a
    time, and a frozen dataclass pays for ``object.__setattr__`` on every field. Here fields are
    private slots behind read-only properties, so building one costs plain slot stores.

    Args:
        role: a :class:`Role` or its string value.
        text: shorthand for ``contents=[TextContent(text)]``; appended after ``contents``.
        contents: the message's parts, in order.
        author_name: which participant wrote it, e.g. an agent's name in a group chat.
        message_id: a stable id; a new one is generated when omitted.
    """

    __slots__ = ("_author_name", "_contents", "_message_id", "_role")

    def __init__(
        self,
        role: Role | str,
        text: str | None = None,
        *,
        contents: Iterable[Content] | None = None,
        author_name: str | None = None,
        message_id: str | None = None,
    ) -> None:
        resolved = role if type(role) is Role else _ROLES.get(role)
        if resolved is None:
            raise MessageFormatError(f"unknown role {role!r}; expected one of {', '.join(_ROLES)}")
        parts: tuple[Content, ...] = tuple(contents) if contents is not None else ()
        if text is not None:
            parts = (*parts, TextContent(text))
        self._role = resolved
        self._contents = parts
        self._author_name = author_name
        self._message_id = message_id if message_id is not None else new_message_id()

    @property
    def role(self) -> Role:
        """Who wrote the message."""
        return self._role

    @property
    def contents(self) -> tuple[Content, ...]:
        """The message's parts, in order."""
        return self._contents

    @property
    def author_name(self) -> str | None:
        """Which participant wrote it, when several share a conversation."""
        return self._author_name

    @property
    def message_id(self) -> str:
        """Stable across stores, so reloading a thread never duplicates turns."""
        return self._message_id

    def _key(self) -> tuple[Role, tuple[Content, ...], str | None, str]:
        return (self._role, self._contents, self._author_name, self._message_id)

    def __eq__(self, other: object) -> bool:
        if type(other) is not ChatMessage:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"ChatMessage(role={self._role.value!r}, contents={list(self._contents)!r}, "
            f"author_name={self._author_name!r}, message_id={self._message_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, self._key())

    def replace(
        self,
        *,
        role: Role | str | None = None,
        contents: Iterable[Content] | None = None,
        author_name: str | None = None,
        message_id: str | None = None,
    ) -> ChatMessage:
        """A copy with the given fields changed (the message itself never changes)."""
        return ChatMessage(
            role if role is not None else self._role,
            contents=contents if contents is not None else self._contents,
            author_name=author_name if author_name is not None else self._author_name,
            message_id=message_id if message_id is not None else self._message_id,
        )

    @property
    def text(self) -> str:
        """The message's text contents joined by spaces; ``""`` when it has none."""
        texts = [c.text for c in self._contents if type(c) is TextContent]
        return texts[0] if len(texts) == 1 else " ".join(texts)

    def to_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form; ``author_name`` is left out when unset."""
        contents = self._contents
        if len(contents) == 1 and type(contents[0]) is TextContent:  # most messages: one text
            encoded: list[JSONValue] = [{"type": "text", "text": contents[0]._text}]
        else:
            encoded = [content_to_dict(c) for c in contents]
        d: dict[str, JSONValue] = {
            "role": _ROLE_TEXT[self._role],
            "contents": encoded,
            "message_id": self._message_id,
        }
        if self._author_name is not None:
            d["author_name"] = self._author_name
        return d

    @classmethod
    def from_dict(cls, d: object) -> ChatMessage:
        """Rebuild a message from :meth:`to_dict`'s form; raises ``MessageFormatError``.

        Threads of thousands of messages are restored through here, so well-formed input takes a
        fast path that checks every field without building the message twice; anything else is
        handed to a thorough check that names the offending field.
        """
        if type(d) is not dict:
            return _from_dict_checked(d)
        fields: dict[str, Any] = d  # pyright: ignore[reportUnknownVariableType]
        role = _ROLES.get(fields.get("role"))  # pyright: ignore[reportArgumentType]
        raw_contents = fields.get("contents")
        message_id = fields.get("message_id")
        author_name = fields.get("author_name")
        if (
            role is None
            or type(raw_contents) is not list
            or type(message_id) is not str
            or not message_id
            or len(fields) != (3 if author_name is None else 4)
            or (author_name is not None and type(author_name) is not str)
        ):
            return _from_dict_checked(fields)
        parts: list[Content] = []
        items: list[dict[str, Any]] = raw_contents  # pyright: ignore[reportUnknownVariableType]
        for item in items:
            if type(item) is dict and len(item) == 2 and item.get("type") == "text":
                text = item.get("text")
                if type(text) is str:
                    content = _new(TextContent)
                    content._text = text
                    parts.append(content)
                    continue
            return _from_dict_checked(fields)  # anything but plain text: the thorough path
        message = _new(cls)
        message._role = role
        message._contents = tuple(parts)
        message._author_name = author_name
        message._message_id = message_id
        return message


_new = object.__new__
_ROLE_TEXT: dict[Role, str] = {r: r.value for r in Role}


def _rebuild(
    role: Role, contents: tuple[Content, ...], author_name: str | None, message_id: str
) -> ChatMessage:
    return ChatMessage(role, contents=contents, author_name=author_name, message_id=message_id)


def _from_dict_checked(d: object) -> ChatMessage:
    """The thorough path of ``ChatMessage.from_dict``: every check, with a precise message."""
    if not isinstance(d, Mapping):
        raise MessageFormatError(f"a message must be a JSON object, got {type(d).__name__}")
    fields = cast(Mapping[str, Any], d)
    unknown = fields.keys() - {"role", "contents", "message_id", "author_name"}
    if unknown:
        raise MessageFormatError(f"message has unknown field(s) {sorted(unknown)}")
    raw_contents = fields.get("contents")
    if not isinstance(raw_contents, list):
        raise MessageFormatError(f"message field 'contents' must be a list, got {raw_contents!r}")
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
    for index, raw in enumerate(cast(list[object], raw_contents)):
        try:
            contents.append(content_from_dict(raw))
        except MessageFormatError as exc:
            raise MessageFormatError(f"contents[{index}]: {exc}") from exc
    return ChatMessage(role, contents=contents, author_name=author_name, message_id=message_id)


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
