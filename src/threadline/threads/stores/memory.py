"""``ChatMessageList``: the in-memory store, the default for local threads."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from threadline._utils import bulk_allocation
from threadline.exceptions import ConcurrentThreadUpdateError, MessageFormatError, ThreadStateError
from threadline.threads.stores.base import (
    TokenCounter,
    check_fork_at,
    check_max_tokens,
    estimate_tokens,
    newest_within_budget,
)
from threadline.types.contents import JSONValue
from threadline.types.messages import (
    ChatMessage,
    MessageView,
    messages_from_dicts,
    messages_to_dicts,
)

__all__ = ["ChatMessageList", "messages_from_state"]


def messages_from_state(raw: object, *, where: str) -> list[ChatMessage]:
    """Parse a serialized list of messages, naming the first bad one in a ``ThreadStateError``."""
    if not isinstance(raw, list):
        raise ThreadStateError(f"{where} must be a list of messages, got {type(raw).__name__}")
    items = cast("list[object]", raw)
    try:
        with bulk_allocation(len(items)):
            return messages_from_dicts(items)
    except MessageFormatError as exc:
        if str(exc).startswith("["):
            raise ThreadStateError(f"{where}{exc}") from exc
        raise ThreadStateError(f"{where} holds the same message_id more than once") from exc


class ChatMessageList:
    """Keeps a thread's messages in memory; serializes to the messages themselves.

    Forking is O(1): a fork shares its parent's messages up to the fork point and keeps only what is
    added after it. Neither side's later messages are visible to the other. Each message's token
    count (from ``token_counter``) is kept beside it, so bounded reads touch only what they return.
    Counts are taken lazily, on the first bounded read: restoring a thread of thousands of messages
    should not pay for a budget nobody may ask for.
    """

    kind = "memory"

    def __init__(
        self,
        messages: Iterable[ChatMessage] | None = None,
        *,
        token_counter: TokenCounter = estimate_tokens,
    ) -> None:
        self._count = token_counter
        self._shared: tuple[tuple[list[ChatMessage], list[int], int], ...] = ()
        """Prefixes shared with the thread this was forked from: (messages, tokens, how many)."""
        self._shared_len = 0
        self._own: list[ChatMessage] = list(messages) if messages is not None else []
        self._own_tokens: list[int] = []
        """Counts of the first ``len(self._own_tokens)`` own messages; the rest come lazily."""

    def __len__(self) -> int:
        return self._shared_len + len(self._own)

    def __iter__(self) -> Iterator[ChatMessage]:
        prefixes = (itertools.islice(seg, n) for seg, _, n in self._shared)
        return itertools.chain(*prefixes, self._own)

    def _counted(self, messages: list[ChatMessage], tokens: list[int], n: int) -> list[int]:
        """``tokens``, extended to cover the first ``n`` of ``messages``.

        Shared lists included: a fork and its parent fill the same list, consistently, since a
        message's count never changes.
        """
        if len(tokens) < n:
            tokens.extend(self._count(m) for m in messages[len(tokens) : n])
        return tokens

    def _tokens_newest_first(self) -> Iterator[int]:
        yield from reversed(self._counted(self._own, self._own_tokens, len(self._own)))
        for messages, tokens, n in reversed(self._shared):
            yield from reversed(self._counted(messages, tokens, n)[:n])

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """All messages, oldest first; the newest that fit ``max_tokens`` when it is given."""
        check_max_tokens(max_tokens)
        if max_tokens is not None:
            keep = newest_within_budget(self._tokens_newest_first(), max_tokens)
            if keep <= len(self._own):
                return self._own[len(self._own) - keep :]
            return list(itertools.islice(self, len(self) - keep, None))
        if not self._shared:
            return self._own.copy()
        return list(self)

    async def view_messages(self) -> MessageView:
        """Every message, oldest first, without copying (see ``ChatMessageStore.view_messages``).

        Safe because this store never changes a list in place: it appends, and a restore or
        delete starts new lists (forks rely on the same rule).
        """
        own = ((self._own, len(self._own)),) if self._own else ()
        return MessageView(*((messages, n) for messages, _, n in self._shared), *own)

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Append the messages, checking ``expected_version`` first."""
        if expected_version is not None and expected_version != len(self):
            raise ConcurrentThreadUpdateError(
                f"in-memory thread {id(self):#x}",
                expected_version=expected_version,
                actual_version=len(self),
            )
        if len(self._own_tokens) == len(self._own):  # all counted so far: keep it that way
            tokens = [self._count(m) for m in messages]  # before any change: a failing counter
            self._own_tokens.extend(tokens)  # leaves the thread as it was
        self._own.extend(messages)
        return len(self)

    async def serialize(self) -> dict[str, JSONValue]:
        """``{"messages": [...]}`` in their JSON form."""
        with bulk_allocation(len(self)):
            return {"messages": messages_to_dicts(self)}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the messages with those in ``state``."""
        messages = messages_from_state(state.get("messages", []), where="store.state.messages")
        # New lists, never in-place changes: forks may still be reading the old ones.
        self._shared = ()
        self._shared_len = 0
        self._own = messages
        self._own_tokens = []

    async def fork(self, *, at: int | None = None) -> ChatMessageList:
        """A branch sharing this thread's first ``at`` messages (all when None), none copied."""
        at = check_fork_at(at, len(self), f"in-memory thread {id(self):#x}")
        child = ChatMessageList(token_counter=self._count)
        own = ((self._own, self._own_tokens, len(self._own)),) if self._own else ()
        kept: list[tuple[list[ChatMessage], list[int], int]] = []
        left = at
        for messages, tokens, n in (*self._shared, *own):
            if left <= 0:
                break
            kept.append((messages, tokens, min(n, left)))
            left -= min(n, left)
        child._shared = tuple(kept)
        child._shared_len = at
        return child

    async def delete(self) -> None:
        """Forget every message; forks keep theirs (they hold their own references)."""
        self._shared = ()
        self._shared_len = 0
        self._own = []
        self._own_tokens = []
