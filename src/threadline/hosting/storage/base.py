"""The ``ServerStorage`` protocol: what the server needs from a database.

Two things are stored:

* **objects** (responses, conversations, assistants, threads, runs) as JSON bodies, each with its
  owner (the API key's account), so every read is scoped to one owner and another key sees nothing;
* **item containers**: append-only lists of messages (``ChatMessage.to_dict()`` JSON), kept as
  threads of the message-store tables (thread id = container id). A conversation or an
  assistants thread is one container. A chain of responses linked by ``previous_response_id``
  shares one container too: each response records how far into it its history reaches
  (``upto``), so continuing from the newest response appends and continuing from an older one (a
  branch) forks the container at that position (sharing, not copying, the prefix). A linear
  conversation therefore costs O(new items) per turn, however long it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from threadline.exceptions import ItemsChangedError

__all__ = ["IdempotencyRecord", "ItemsChangedError", "ServerStorage", "StoredObject"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObject:
    """One stored API object."""

    id: str
    owner: str
    """The account (API key owner) the object belongs to; others get 404."""
    kind: str
    """``response``, ``conversation``, ``assistant``, ``thread`` or ``run``."""
    body: dict[str, Any]
    """The object's JSON as the API returns it."""
    parent: str | None = None
    """The object this one belongs to (a run's thread), for listing and cascading deletes."""
    container: str | None = None
    """The item container holding this object's history."""
    upto: int | None = None
    """How many items of ``container`` belong to this object's history (responses)."""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotencyRecord:
    """The outcome of a request made with an ``Idempotency-Key``: replayed to retries."""

    status: int
    body: dict[str, Any]


class ServerStorage(Protocol):
    """The database behind a threadline server; implementations must be safe across processes."""

    async def get(self, owner: str, kind: str, object_id: str) -> StoredObject | None:
        """The object, or ``None`` when it does not exist or belongs to another owner."""
        ...

    async def put(self, obj: StoredObject) -> None:
        """Insert or replace an object."""
        ...

    async def delete(self, owner: str, kind: str, object_id: str) -> bool:
        """Delete an object, its children and its container's items; False when not found."""
        ...

    async def list_objects(
        self, owner: str, kind: str, *, parent: str | None = None, limit: int = 20
    ) -> list[StoredObject]:
        """Objects of one kind (and parent), newest first."""
        ...

    async def items(self, container: str, *, upto: int | None = None) -> list[dict[str, Any]]:
        """The items of a container, oldest first, the first ``upto`` when given."""
        ...

    async def append(
        self,
        container: str,
        items: Sequence[dict[str, Any]],
        *,
        expected_len: int | None = None,
        objects: Sequence[StoredObject] = (),
        copy_from: tuple[str, int] | None = None,
        idempotency: tuple[str, str, IdempotencyRecord] | None = None,
    ) -> int:
        """Append items and save objects in one transaction; returns the container's new length.

        ``copy_from=(source, upto)`` first fills a new container with a prefix of another (a
        branch). ``expected_len`` makes the write fail with ``ItemsChangedError`` if the
        container's length differs (checked after the copy). ``idempotency=(owner, key, record)``
        stores the answer of a claimed key in the same transaction, so a crash never leaves a
        written turn whose retry would run it again.
        """
        ...

    async def replace_items(
        self, container: str, items: Sequence[dict[str, Any]], *, expected_len: int
    ) -> None:
        """Rewrite a container's items in one transaction (deleting an item from a conversation).

        Fails with ``ItemsChangedError`` if the container no longer holds ``expected_len`` items.
        """
        ...

    async def idempotency_begin(self, owner: str, key: str) -> IdempotencyRecord | None | bool:
        """Claim ``key``: True when claimed, a record when already done, None while in flight."""
        ...

    async def idempotency_finish(self, owner: str, key: str, record: IdempotencyRecord) -> None:
        """Store the outcome of a claimed key."""
        ...

    async def idempotency_release(self, owner: str, key: str) -> None:
        """Drop a claim whose request failed, so a retry runs it again."""
        ...

    async def open(self) -> None:
        """Connect and check the schema now (safe to call more than once).

        The server calls it at start-up, so storage it cannot use stops it there rather than
        failing every request.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
