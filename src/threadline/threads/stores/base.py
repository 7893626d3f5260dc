"""The ``ChatMessageStore`` protocol: where a local thread keeps its messages.

Stores are append-only. A turn adds its new messages in one call, and every call may carry the
version the writer last read (the number of messages in the thread); a store that finds another
number raises :class:`~threadline.exceptions.ConcurrentThreadUpdateError` and writes nothing. That
one rule is what keeps two writers from interleaving their turns.

Additions since the first version of the protocol (all backward compatible for callers: the agent
still calls ``list_messages()`` with no arguments):

* ``list_messages(max_tokens=N)`` reads only the newest messages that fit a token budget. Stores
  record each message's token count when it is written (see :data:`TokenCounter`), so a bounded
  read never loads the whole history.
* ``delete()`` removes the thread. Forks of it keep their history.
* A record a store cannot read back (corrupt bytes, a wrong encryption key) raises
  :class:`~threadline.exceptions.StoreError` naming the thread and the record, never a bare
  ``json`` or ``KeyError``.

:mod:`threadline.testing.store_conformance` checks all of these promises against any store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from threadline.types.contents import JSONValue, TextContent
from threadline.types.messages import ChatMessage

__all__ = [
    "ChatMessageStore",
    "TokenCounter",
    "check_max_tokens",
    "estimate_tokens",
    "newest_within_budget",
    "store_kind",
]

TokenCounter: TypeAlias = Callable[[ChatMessage], int]
"""Counts a message's tokens once, when a store writes it; the count is stored beside it.

Pass a real tokenizer (e.g. ``lambda m: len(enc.encode(m.text)) + 4``) to stores that take a
``token_counter`` when budgets must match a model exactly. Counts are never recomputed: changing
the counter affects messages written afterwards only.
"""

_MESSAGE_OVERHEAD = 4
"""Tokens a chat format spends on a message's framing (role, separators), as OpenAI documents."""


def estimate_tokens(message: ChatMessage) -> int:
    """The default :data:`TokenCounter`: about four characters per token, plus framing.

    Cheap and dependency-free, and close enough for budgeting English text; it overestimates
    code and data slightly, which errs on the side of fitting the model's window. Non-text
    contents are counted by the length of their JSON form.
    """
    plain = message.plain_text
    if plain is not None:  # most messages: no need to look at parts
        return _MESSAGE_OVERHEAD + (len(plain) + 3) // 4
    chars = 0
    for content in message.contents:
        if type(content) is TextContent:
            chars += len(content.text)
        else:
            from threadline.types.contents import content_to_dict

            # default=str: counting must not fail where encoding would explain the problem
            chars += len(json.dumps(content_to_dict(content), ensure_ascii=False, default=str))
    return _MESSAGE_OVERHEAD + (chars + 3) // 4


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
