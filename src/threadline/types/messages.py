"""``ChatMessage`` and ``Role``: the unit every thread, store and client speaks in."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, cast, overload

from threadline.exceptions import MessageFormatError
from threadline.types.contents import (
    Content,
    JSONValue,
    TextContent,
    content_from_dict,
    content_to_dict,
)

__all__ = [
    "ChatMessage",
    "MessageView",
    "Role",
    "messages_from_dicts",
    "messages_to_dicts",
    "new_message_id",
]


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
    private slots behind read-only properties, so building one costs plain slot stores. A message
    of one text content (most of them) keeps just the text and builds its ``contents`` tuple on
    first use, which spares two objects per message when long threads are restored.

    Args:
        role: a :class:`Role` or its string value.
        text: shorthand for ``contents=[TextContent(text)]``; appended after ``contents``.
        contents: the message's parts, in order.
        author_name: which participant wrote it, e.g. an agent's name in a group chat.
        message_id: a stable id; a new one is generated when omitted.
    """

    __slots__ = ("_author_name", "_contents", "_message_id", "_role", "_text")
    _role: Role
    _text: str | None
    """Set when the message is exactly one text content; ``_contents`` is then built on use."""
    _contents: tuple[Content, ...] | None
    _author_name: str | None
    _message_id: str

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
        self._role = resolved
        if contents is None and text is not None:  # the common case: one text, built lazily
            self._text = text
            self._contents = None
        else:
            parts: tuple[Content, ...] = tuple(contents) if contents is not None else ()
            if text is not None:
                parts = (*parts, TextContent(text))
            first = parts[0] if len(parts) == 1 else None
            self._text = first.text if type(first) is TextContent else None
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
        contents = self._contents
        if contents is None:
            contents = self._contents = (TextContent(self._text or ""),)
        return contents

    @property
    def plain_text(self) -> str | None:
        """The text when the message is exactly one text content, else ``None``.

        A cheap test for the common shape, for code that handles plain text faster than parts.
        """
        return self._text

    @property
    def author_name(self) -> str | None:
        """Which participant wrote it, when several share a conversation."""
        return self._author_name

    @property
    def message_id(self) -> str:
        """Stable across stores, so reloading a thread never duplicates turns."""
        return self._message_id

    def _key(self) -> tuple[Role, str | None, tuple[Content, ...] | None, str | None, str]:
        # Plain-text messages compare by their text, whether or not `contents` was built yet.
        contents = None if self._text is not None else self._contents
        return (self._role, self._text, contents, self._author_name, self._message_id)

    def __eq__(self, other: object) -> bool:
        if type(other) is not ChatMessage:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"ChatMessage(role={self._role.value!r}, contents={list(self.contents)!r}, "
            f"author_name={self._author_name!r}, message_id={self._message_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._role, self.contents, self._author_name, self._message_id))

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
            contents=contents if contents is not None else self.contents,
            author_name=author_name if author_name is not None else self._author_name,
            message_id=message_id if message_id is not None else self._message_id,
        )

    @property
    def text(self) -> str:
        """The message's text contents joined by spaces; ``""`` when it has none."""
        if self._text is not None:
            return self._text
        texts = [c.text for c in self.contents if type(c) is TextContent]
        return texts[0] if len(texts) == 1 else " ".join(texts)

    def to_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form.

        A message of exactly one text content, the shape of nearly every chat turn, is written
        as ``{"role", "text", "message_id"}``; any other as ``{"role", "contents", "message_id"}``.
        Each message has exactly one form, so equal messages always encode alike. The shorthand
        keeps stored threads small and makes restoring them about three times faster.
        ``author_name`` is added when set.
        """
        d: dict[str, JSONValue]
        if self._text is not None:
            d = {"role": _ROLE_TEXT[self._role], "text": self._text}
        else:
            d = {
                "role": _ROLE_TEXT[self._role],
                "contents": [content_to_dict(c) for c in self.contents],
            }
        d["message_id"] = self._message_id
        if self._author_name is not None:
            d["author_name"] = self._author_name
        return d

    @classmethod
    def from_dict(cls, d: object) -> ChatMessage:
        """Rebuild a message from :meth:`to_dict`'s form; raises ``MessageFormatError``.

        Threads of thousands of messages are restored through here, so the text shorthand takes a
        fast path that checks every field without building anything twice; anything else goes
        through a thorough check that names the offending field.
        """
        if type(d) is not dict:
            return _from_dict_checked(d)
        fields: dict[str, Any] = d  # pyright: ignore[reportUnknownVariableType]
        try:
            role = _ROLES[fields["role"]]
            text = fields["text"]
            message_id = fields["message_id"]
        except (KeyError, TypeError):  # another shape, or a bad value: let the checks explain
            return _from_dict_checked(fields)
        author_name = fields.get("author_name")
        if (
            type(text) is not str
            or type(message_id) is not str
            or not message_id
            or len(fields) != (3 if author_name is None else 4)
            or (author_name is not None and type(author_name) is not str)
        ):
            return _from_dict_checked(fields)
        message = _new(cls)
        message._role = role
        message._text = text
        message._contents = None
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
    unknown = fields.keys() - {"role", "text", "contents", "message_id", "author_name"}
    if unknown:
        raise MessageFormatError(f"message has unknown field(s) {sorted(unknown)}")
    if ("text" in fields) == ("contents" in fields):
        raise MessageFormatError("a message has either 'text' or 'contents', exactly one of them")
    text = fields.get("text")
    if "text" in fields and type(text) is not str:
        raise MessageFormatError(f"message field 'text' must be a string, got {text!r}")
    raw_contents = fields.get("contents", [])
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
    return ChatMessage(
        role, text, contents=contents, author_name=author_name, message_id=message_id
    )


class MessageView(Sequence[ChatMessage]):
    """Messages read without copying: parts joined in order, each the first ``n`` of its list.

    A thread of 10,000 messages is read every turn; copying it costs more than the rest of the
    turn. Stores whose lists only ever grow at the end (a prefix never changes in place; a
    delete or restore starts a new list) hand out a view of their prefix instead, and the agent
    builds its model request as a view of system message, history and input. The view is
    read-only; ``list(view)`` makes a list to change.
    """

    __slots__ = ("_len", "_parts")

    def __init__(self, *parts: tuple[Sequence[ChatMessage], int]) -> None:
        self._parts = parts
        self._len = sum(n for _, n in parts)

    @classmethod
    def of(cls, *parts: Sequence[ChatMessage]) -> MessageView:
        """A view of whole sequences (each left as it is while the view is used).

        A view among them lends its own parts, so iterating never goes through views of views.
        """
        flat: list[tuple[Sequence[ChatMessage], int]] = []
        for part in parts:
            if type(part) is MessageView:
                flat.extend(part._parts)
            elif part:
                flat.append((part, len(part)))
        return cls(*flat)

    def __len__(self) -> int:
        return self._len

    def last(self) -> ChatMessage | None:
        """The last message, ``None`` when empty (asked every turn, so no negative index)."""
        for items, n in reversed(self._parts):  # a part may be empty (made with n == 0)
            if n:
                return items[n - 1]
        return None

    def __iter__(self) -> Iterator[ChatMessage]:
        # Whole lists iterate at C speed; only a part that has grown since is cut short.
        parts = [
            items if n == len(items) else itertools.islice(items, n) for items, n in self._parts
        ]
        return iter(parts[0]) if len(parts) == 1 else itertools.chain.from_iterable(parts)

    @overload
    def __getitem__(self, index: int) -> ChatMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[ChatMessage]: ...

    def __getitem__(self, index: int | slice) -> ChatMessage | list[ChatMessage]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("message index out of range")
        for items, n in self._parts:
            if index < n:
                return items[index]
            index -= n
        raise IndexError("message index out of range")  # pragma: no cover - lengths add up

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MessageView | list | tuple):
            return list(self) == list(cast("Sequence[object]", other))
        return NotImplemented

    __hash__ = None  # pyright: ignore[reportAssignmentType] - equal to lists: unhashable

    def __repr__(self) -> str:
        return f"MessageView({list(self)!r})"


def messages_to_dicts(messages: Iterable[ChatMessage]) -> list[JSONValue]:
    """``[m.to_dict() for m in messages]``, for whole threads: one tight loop, no call per message.

    A thread of 10,000 messages is serialized this way; the text shorthand (nearly every message)
    is built inline, anything else through :meth:`ChatMessage.to_dict`.
    """
    out: list[JSONValue] = []
    append = out.append
    roles = _ROLE_TEXT
    for message in messages:
        text = message._text
        if text is None:
            append(message.to_dict())
            continue
        d: dict[str, JSONValue] = {
            "role": roles[message._role],
            "text": text,
            "message_id": message._message_id,
        }
        if message._author_name is not None:
            d["author_name"] = message._author_name
        append(d)
    return out


def messages_from_dicts(items: Sequence[object]) -> list[ChatMessage]:
    """``[ChatMessage.from_dict(d) for d in items]`` for whole threads, ids checked unique.

    The text shorthand is rebuilt inline (the fast path of :meth:`ChatMessage.from_dict`, without
    a call per message); anything else goes through ``from_dict`` and its thorough checks.

    Raises:
        MessageFormatError: an item is malformed (the message says which, ``[index]: ...``) or
            a message id appears twice.
    """
    out: list[ChatMessage] = []
    append = out.append
    roles = _ROLES
    cls = ChatMessage
    new = _new
    for d in items:
        if type(d) is dict:
            fields = cast("dict[str, Any]", d)
            try:  # the shorthand's three keys; anything else takes the thorough path below
                role = roles[fields["role"]]
                text = fields["text"]
                message_id = fields["message_id"]
            except (KeyError, TypeError):
                pass
            else:
                author_name = fields.get("author_name")
                if (
                    type(text) is str
                    and type(message_id) is str
                    and message_id
                    and len(fields) == (3 if author_name is None else 4)
                    and (author_name is None or type(author_name) is str)
                ):
                    message = new(cls)
                    message._role = role
                    message._text = text
                    message._contents = None
                    message._author_name = author_name
                    message._message_id = message_id
                    append(message)
                    continue
        try:
            append(_from_dict_checked(cast(object, d)))
        except MessageFormatError as exc:
            raise MessageFormatError(f"[{len(out)}]: {exc}") from exc
    if len({m._message_id for m in out}) != len(out):
        raise MessageFormatError("the same message_id appears more than once")
    return out


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
