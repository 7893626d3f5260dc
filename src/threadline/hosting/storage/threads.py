"""``ThreadServerStorage``: the server's item containers as threads in any ``ChatMessageStore``.

EXPERIMENTAL (issue 9, item 10, first step). A conversation, a Responses chain or an Assistants
thread is one thread whose id is the container's id, so ``threadline threads`` and any program
holding the store can read, export or fork it; the objects' metadata (responses, assistants,
runs, idempotency keys, ownership) stays in a small object table (another ``ServerStorage``, whose
own item tables go unused).

Known limits, which the complete design removes with two store additions (see the report of the
branch): an append writes the thread and then the objects, in two transactions (a crash between
them leaves a turn in the thread without its response object), a branch copies its prefix instead
of sharing it (``fork`` has no position), and deleting a conversation item rewrites the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from threadline.exceptions import ConcurrentThreadUpdateError, ItemsChangedError
from threadline.hosting.storage.base import IdempotencyRecord, ServerStorage, StoredObject
from threadline.threads.stores.base import ChatMessageStore
from threadline.types.messages import ChatMessage

__all__ = ["ThreadServerStorage"]


class ThreadServerStorage:
    """Server storage whose item containers are threads of a ``ChatMessageStore``.

    Args:
        objects: the object table (and idempotency records).
        thread_store: makes the store of the thread with a given id.
        close: releases what ``thread_store`` shares (a connection, a client), called on close.
        start: opens what ``thread_store`` shares, awaited once before the first thread is used.
    """

    def __init__(
        self,
        objects: ServerStorage,
        thread_store: Callable[[str], ChatMessageStore],
        *,
        close: Callable[[], Any] | None = None,
        start: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.objects = objects
        self._make = thread_store
        self._close = close
        self._start = start
        self._started: asyncio.Task[None] | None = None

    async def thread(self, thread_id: str) -> ChatMessageStore:
        """The store of one thread, once what the stores share is open."""
        if self._start is not None:
            if self._started is None:
                self._started = asyncio.get_running_loop().create_task(self._start())
            await asyncio.shield(self._started)
        return self._make(thread_id)

    async def get(self, owner: str, kind: str, object_id: str) -> StoredObject | None:
        """The object, or ``None`` when missing or owned by someone else."""
        return await self.objects.get(owner, kind, object_id)

    async def put(self, obj: StoredObject) -> None:
        """Insert or replace an object."""
        await self.objects.put(obj)

    async def delete(self, owner: str, kind: str, object_id: str) -> bool:
        """Delete an object with its children; a conversation or thread also loses its thread."""
        found = await self.objects.get(owner, kind, object_id)
        if found is None:
            return False
        deleted = await self.objects.delete(owner, kind, object_id)
        if deleted and found.container is not None and kind != "response":
            await (await self.thread(found.container)).delete()
        return deleted

    async def list_objects(
        self, owner: str, kind: str, *, parent: str | None = None, limit: int = 20
    ) -> list[StoredObject]:
        """Objects of one kind (and parent), newest first."""
        return await self.objects.list_objects(owner, kind, parent=parent, limit=limit)

    async def items(self, container: str, *, upto: int | None = None) -> list[dict[str, Any]]:
        """The thread's messages as items, oldest first, the first ``upto`` when given."""
        messages = await (await self.thread(container)).list_messages()
        if upto is not None:
            messages = messages[:upto]
        return [m.to_dict() for m in messages]

    async def append(
        self,
        container: str,
        items: Sequence[dict[str, Any]],
        *,
        expected_len: int | None = None,
        objects: Sequence[StoredObject] = (),
        copy_from: tuple[str, int] | None = None,
    ) -> int:
        """Append to the thread (version-checked), then save the objects."""
        store = await self.thread(container)
        if copy_from is not None:
            source, upto = copy_from
            prefix = (await (await self.thread(source)).list_messages())[:upto]
            try:
                await store.add_messages(prefix, expected_version=0)
            except ConcurrentThreadUpdateError as exc:
                raise ItemsChangedError(f"branch {container!r} exists already: {exc}") from None
        messages = [ChatMessage.from_dict(item) for item in items]
        try:
            version = await store.add_messages(messages, expected_version=expected_len)
        except ConcurrentThreadUpdateError as exc:
            raise ItemsChangedError(str(exc)) from None
        for obj in objects:
            await self.objects.put(obj)
        return version

    async def replace_items(
        self, container: str, items: Sequence[dict[str, Any]], *, expected_len: int
    ) -> None:
        """Rewrite the thread (delete, then add the kept messages)."""
        store = await self.thread(container)
        current = await store.list_messages()
        if len(current) != expected_len:
            raise ItemsChangedError(
                f"thread {container!r} has {len(current)} messages, expected {expected_len}"
            )
        await store.delete()
        fresh = await self.thread(container)
        await fresh.add_messages([ChatMessage.from_dict(i) for i in items], expected_version=0)

    async def idempotency_begin(self, owner: str, key: str) -> IdempotencyRecord | None | bool:
        """Claim ``key`` in the object table."""
        return await self.objects.idempotency_begin(owner, key)

    async def idempotency_finish(self, owner: str, key: str, record: IdempotencyRecord) -> None:
        """Store the outcome of a claimed key."""
        await self.objects.idempotency_finish(owner, key, record)

    async def idempotency_release(self, owner: str, key: str) -> None:
        """Drop a claim whose request failed."""
        await self.objects.idempotency_release(owner, key)

    async def close(self) -> None:
        """Close the object table and what the thread stores share."""
        await self.objects.close()
        if self._close is not None:
            result = self._close()
            if hasattr(result, "__await__"):
                await result
