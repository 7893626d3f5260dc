"""The ``ChatMessageStore`` protocol: where a local thread keeps its messages.

Stores are append-only. A turn adds its new messages in one call, and every call may carry the
version the writer last read (the number of messages in the thread); a store that finds another
number raises :class:`~threadline.exceptions.ConcurrentThreadUpdateError` and writes nothing. That
one rule is what keeps two writers from interleaving their turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage

__all__ = ["ChatMessageStore", "store_kind"]


@runtime_checkable
class ChatMessageStore(Protocol):
    """Holds one thread's history; must tolerate concurrent calls.

    A store may define a ``kind`` attribute (e.g. ``"sqlite"``); it is saved with the thread so the
    state is only ever restored into a store of the same kind.
    """

    async def list_messages(self) -> list[ChatMessage]:
        """All messages of the thread, oldest first, as a new list the caller may keep."""
        ...

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append ``messages`` atomically and return the new version (the message count).

        Raises:
            ConcurrentThreadUpdateError: ``expected_version`` is given and the thread holds a
                different number of messages; nothing was written.
        """
        ...

    async def serialize(self) -> dict[str, JSONValue]:
        """The store's whole state as plain JSON: its messages, or a reference to where they live.

        Never include secrets (passwords, keys): serialized threads travel.
        """
        ...

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace this store's contents with ``state`` from :meth:`serialize`.

        Replacing, never merging, is what makes restoring the same state twice safe.

        Raises:
            ThreadStateError: the state is malformed.
        """
        ...

    async def fork(self) -> ChatMessageStore:
        """A new store that starts with this one's messages and then goes its own way.

        Stores should share the common history rather than copy it where they can.
        """
        ...


def store_kind(store: object) -> str:
    """The kind recorded with a store's state: its ``kind`` attribute or its class path."""
    kind = getattr(store, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    cls = type(store)
    return f"{cls.__module__}.{cls.__qualname__}"
