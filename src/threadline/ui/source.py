"""``UiSource``: what the web UI reads and changes, whoever keeps the data.

The pages are the same for a server's conversations and for the local home of the ``threadline``
command; only where threads and memories live differs. Each method takes the caller's
``account`` (from :data:`Authenticate`) and answers only with that account's data: a thread or
memory of another account is ``None`` / ``False``, exactly as one that does not exist, so the
pages cannot tell the two apart (both are a 404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from starlette.requests import Request

from threadline.memory.records import MemoryKind
from threadline.types.messages import ChatMessage

__all__ = ["Authenticate", "MemoryEntry", "ThreadEntry", "ThreadView", "UiSource"]

Authenticate = Callable[[Request], Awaitable[str | None]]
"""The account a request's key belongs to, or ``None`` for a missing or unknown key (a 401)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadEntry:
    """One thread as the list shows it."""

    thread_id: str
    title: str
    """The start of the first user message."""
    messages: int
    updated_at: float
    """Unix seconds of the last change; the list is newest first."""
    kind: Literal["thread", "group"] = "thread"
    """``group``: a group chat's transcript (marked in the list)."""
    parent_id: str | None = None
    """The thread this one was forked from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadView:
    """One page of a thread's transcript, with where it sits in its fork tree."""

    entry: ThreadEntry
    messages: Sequence[ChatMessage]
    """Messages ``offset`` to ``offset + len(messages)`` of ``entry.messages``."""
    offset: int
    children: Sequence[ThreadEntry] = ()
    """Threads forked from this one."""
    notes: Sequence[str] = ()
    """Lines shown under the title: for a group chat, the manager's choices of speaker."""
    usage: tuple[int, int] | None = None
    """Input and output tokens of the thread's model calls, where the source records them apart
    from the messages (a server's response objects); usage inside messages is shown with them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEntry:
    """A memory record as the memories page shows it (``score`` only for a search hit)."""

    memory_id: str
    kind: MemoryKind
    text: str
    thread_id: str | None
    recorded_at: str
    """ISO 8601, UTC."""
    score: float | None = None


class UiSource(Protocol):
    """Threads and memories of the accounts of one server or home, for the web UI."""

    @property
    def chat_via(self) -> Literal["responses", "source"] | None:
        """How the chat box sends a message.

        ``responses``: the server's own ``POST /v1/responses``; ``source``: :meth:`chat`;
        ``None``: the pages have no chat box.
        """
        ...

    async def chat(self, account: str, thread_id: str, text: str) -> AsyncIterator[str] | None:
        """Run a turn on the thread, streaming the reply's text; ``None`` when not found.

        Only called when :attr:`chat_via` is ``source``.
        """
        ...

    async def threads(self, account: str, *, query: str = "") -> list[ThreadEntry]:
        """The account's threads whose text contains ``query`` (all when empty), newest first."""
        ...

    async def thread(
        self, account: str, thread_id: str, *, offset: int, limit: int
    ) -> ThreadView | None:
        """One page of a thread's messages; ``None`` when it is not the account's."""
        ...

    async def fork(self, account: str, thread_id: str, *, at: int) -> ThreadEntry | None:
        """A new thread with the first ``at`` messages of ``thread_id``; ``None`` if not found."""
        ...

    async def memories(self, account: str, user: str, *, query: str = "") -> list[MemoryEntry]:
        """The user's memories (newest first), or the hits of ``query`` (best first)."""
        ...

    async def forget_memory(self, account: str, user: str, memory_id: str) -> bool:
        """Delete one of the user's memories; False when the user has no such record."""
        ...

    async def forget_user(self, account: str, user: str) -> int:
        """Delete every memory of the user (and what a server keeps of them); how many records."""
        ...
