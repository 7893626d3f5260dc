"""The ``ChatMessageStore`` protocol: where a local thread keeps its messages.

Stores are append-only. A turn adds its new messages in one call, and every call may carry the
version the writer last read (the number of messages in the thread); a store that finds another
number raises :class:`~threadline.exceptions.ConcurrentThreadUpdateError` and writes nothing. That
one rule is what keeps two writers from interleaving their turns.

Additions since the first version of the protocol (all backward compatible for callers: the agent
still calls ``list_messages()`` with no arguments):

* ``list_messages(max_tokens=N)`` reads only the newest messages that fit a token budget. Stores
  record each message's token count when it is written (see :data:`TokenCounter`, defined with
  the default :func:`estimate_tokens` in :mod:`threadline.history`), so a bounded read never
  loads the whole history.
* ``delete()`` removes the thread. Forks of it keep their history.
* A record a store cannot read back (corrupt bytes, a wrong encryption key) raises
  :class:`~threadline.exceptions.StoreError` naming the thread and the record, never a bare
  ``json`` or ``KeyError``.
* Optionally, ``view_messages()``: the same messages as ``list_messages()``, as a read-only
  sequence that is not a copy (see :func:`read_thread`); the shipped stores have it.

:mod:`threadline.testing.store_conformance` checks all of these promises against any store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from threadline.history import TokenCounter, estimate_tokens
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage

__all__ = [
    "ChatMessageStore",
    "TokenCounter",
    "check_max_tokens",
    "estimate_tokens",
    "newest_within_budget",
    "read_thread",
    "store_kind",
]


def check_max_tokens(max_tokens: int | None) -> None:
    """Reject a negative or non-integer budget with a ``ValueError`` naming it."""
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 0):
        raise ValueError(f"max_tokens must be a non-negative int or None, got {max_tokens!r}")


def newest_within_budget(tokens_newest_first: Iterable[int], max_tokens: int) -> int:
    """How many of the newest messages fit ``max_tokens``, given their counts newest first.

    The selection is always a suffix of the thread: it stops at the first message that does not
    fit, so the result never has a gap in it.
    """
    used = 0
    count = 0
    for tokens in tokens_newest_first:
        used += tokens
        if used > max_tokens:
            break
        count += 1
    return count


@runtime_checkable
class ChatMessageStore(Protocol):
    """Holds one thread's history; must tolerate concurrent calls.

    A store may define a ``kind`` attribute (e.g. ``"sqlite"``); it is saved with the thread so the
    state is only ever restored into a store of the same kind.
    """

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """The thread's messages, oldest first, as a new list the caller may keep.

        Args:
            max_tokens: when given, only the newest messages whose stored token counts add up to
                at most this many: the longest such suffix of the thread (empty when even the
                newest message does not fit). Stores answer it without loading the whole history.

        Raises:
            StoreError: a stored record cannot be read; the message names thread and record.
        """
        ...

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append ``messages`` atomically and return the new version (the message count).

        All of them are stored or none: a reader never sees part of a turn.

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

    async def fork(self, *, at: int | None = None) -> ChatMessageStore:
        """A new store that starts with this one's messages and then goes its own way.

        ``at`` forks at a position: the new store starts with the first ``at`` messages only (a
        branch from an earlier turn). Stores should share the common history rather than copy
        it where they can.

        Raises:
            ValueError: ``at`` is negative or past the thread's length (see :func:`check_fork_at`).
        """
        ...

    async def delete(self) -> None:
        """Remove the thread's messages; the store then reads as an empty thread.

        Forks made earlier keep their whole history.
        """
        ...


async def read_thread(store: ChatMessageStore) -> Sequence[ChatMessage]:
    """Every message of ``store``'s thread, oldest first, for reading only.

    Stores that can hand out their messages without copying them (a ``view_messages()``
    method returning a read-only sequence that later appends never change) do so: an agent reads
    the whole thread every turn, and on long threads the copy is most of the turn's cost. Other
    stores are asked for ``list_messages()``.
    """
    view = getattr(store, "view_messages", None)
    if view is not None:
        return await view()
    return await store.list_messages()


def check_fork_at(at: int | None, length: int, thread: str) -> int:
    """The fork position ``at`` means in a thread of ``length`` messages (all when None).

    Raises:
        ValueError: ``at`` is not an int from 0 to ``length``; the message names the thread.
    """
    if at is None:
        return length
    if type(at) is not int or not 0 <= at <= length:
        raise ValueError(
            f"cannot fork thread {thread} at {at!r}: it holds {length} messages "
            f"(give a position from 0 to {length})"
        )
    return at


def store_kind(store: object) -> str:
    """The kind recorded with a store's state: its ``kind`` attribute or its class path."""
    kind = getattr(store, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    cls = type(store)
    return f"{cls.__module__}.{cls.__qualname__}"
