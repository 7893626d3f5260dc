"""``StagedStore``: run an agent on a thread, and commit its turn together with records.

An agent appends a turn in one ``add_messages`` call (see ``agents/_turn.py``). Through a
``StagedStore`` that append is held instead of written: the caller then puts it in a
:class:`~threadline.threads.stores.records.ThreadBatch` beside the records that describe the turn
(a server's response object and idempotency answer, a CLI's saved thread state) and commits it
all in one transaction::

    staged = StagedStore(database.store(thread_id))
    response = await agent.run("hi", thread=AgentThread(message_store=staged))
    batch = staged.stage_into(ThreadBatch(), thread_id)
    batch.put(ThreadRecord(kind="response", id=response_id, thread_id=thread_id, body=body))
    await database.commit(batch)

Reads come from the thread itself. The append keeps the version it was checked against, so the
commit fails with ``ConcurrentThreadUpdateError`` if another writer got there first, exactly as
the agent's own append would. ``upto`` shows only the thread's first messages: a turn meant for a
branch at that point (``batch.fork(...)`` then ``stage_into(batch, child_id)``), made only when
the turn commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from threadline.exceptions import ConcurrentThreadUpdateError, UsageError
from threadline.threads.stores.base import (
    ChatMessageStore,
    TokenCounter,
    check_max_tokens,
    estimate_tokens,
    newest_within_budget,
    store_kind,
)
from threadline.threads.stores.records import ThreadBatch
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage

__all__ = ["StagedStore"]


class StagedStore:
    """A store over another whose appends are held for the caller to commit.

    Args:
        store: the thread's own store; every read goes to it.
        upto: show only the first ``upto`` messages of the thread (a branch point).
        token_counter: counts messages for bounded reads of a branch (``upto``), which cannot be
            asked of the store; give the store's own counter if it has another.
    """

    def __init__(
        self,
        store: ChatMessageStore,
        *,
        upto: int | None = None,
        token_counter: TokenCounter = estimate_tokens,
    ) -> None:
        self.store = store
        self.upto = upto
        self._count = token_counter
        self.staged: list[ChatMessage] = []
        """The messages appended so far and not yet committed."""
        self.expected_version: int | None = None
        """The thread's version the first held append was checked against (None: unchecked)."""
        self._seen: int | None = None
        """How many of the thread's messages the last read returned."""

    @property
    def kind(self) -> str:
        """The kind of the store underneath: a staged thread serializes as that thread."""
        return store_kind(self.store)

    async def _thread(self) -> list[ChatMessage]:
        messages = await self.store.list_messages()
        if self.upto is not None:
            if len(messages) < self.upto:
                raise ConcurrentThreadUpdateError(
                    repr(self.store), expected_version=self.upto, actual_version=len(messages)
                )
            del messages[self.upto :]
        self._seen = len(messages)
        return messages

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        """The thread's messages (its first ``upto``), then the held ones."""
        check_max_tokens(max_tokens)
        if max_tokens is not None and self.upto is None and not self.staged:
            return await self.store.list_messages(max_tokens=max_tokens)
        messages = [*await self._thread(), *self.staged]
        if max_tokens is None:
            return messages
        keep = newest_within_budget((self._count(m) for m in reversed(messages)), max_tokens)
        return messages[len(messages) - keep :]

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        """Hold ``messages``, checked against the last read now and against the thread at commit."""
        committed = self._seen if self._seen is not None else len(await self._thread())
        version = committed + len(self.staged)
        if expected_version is not None and expected_version != version:
            raise ConcurrentThreadUpdateError(
                repr(self.store), expected_version=expected_version, actual_version=version
            )
        if not self.staged:
            self.expected_version = committed if expected_version is not None else None
        self.staged.extend(messages)
        return version + len(messages)

    def stage_into(self, batch: ThreadBatch, thread_id: str) -> ThreadBatch:
        """Add the held messages to ``batch`` as an append to ``thread_id``; returns the batch.

        ``thread_id`` is the thread's own id, or a branch's made earlier in the same batch.
        """
        batch.append(thread_id, self.staged, expected_version=self.expected_version)
        return batch

    def discard(self) -> None:
        """Forget the held messages (the turn is not to be stored)."""
        self.staged = []
        self.expected_version = None
        self._seen = None

    async def serialize(self) -> dict[str, JSONValue]:
        """The state of the thread underneath (what is committed; held messages are not)."""
        return await self.store.serialize()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Point the store underneath at another thread; held messages are dropped."""
        await self.store.load_state(state)
        self.discard()

    async def fork(self, *, at: int | None = None) -> ChatMessageStore:
        """A fork of the thread underneath (at ``upto`` when ``at`` is None).

        Raises:
            UsageError: messages are held: commit or discard them first.
        """
        if self.staged:
            raise UsageError("a staged store holds an uncommitted turn; commit it before forking")
        return await self.store.fork(at=at if at is not None else self.upto)

    async def delete(self) -> None:
        """Delete the thread underneath and drop held messages."""
        await self.store.delete()
        self.discard()
