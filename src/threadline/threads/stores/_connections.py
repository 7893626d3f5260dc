"""What the server-backed stores share: redacted URLs, one client among forks, restore checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Self

from threadline._utils import redact_url
from threadline.exceptions import ThreadStateError
from threadline.threads.state import check_thread_id
from threadline.threads.stores._cache import HistoryCache
from threadline.types.contents import JSONValue

__all__ = ["ConnectedStore", "SharedResource", "redact_url"]


class SharedResource:
    """A connection (pool) shared by a store and its forks, closed when the last one lets go.

    Resources the caller passed in are never closed by stores: their owner closes them.
    """

    def __init__(self, close: Callable[[], Awaitable[None]] | None) -> None:
        self._close = close
        self._users = 0

    def acquire(self) -> None:
        """One more store uses the resource."""
        self._users += 1

    async def release(self) -> None:
        """A store is done with it; close it if it was the last and the resource is ours."""
        self._users -= 1
        if self._users == 0 and self._close is not None:
            close, self._close = self._close, None
            await close()


class ConnectedStore:
    """What the Redis and PostgreSQL stores share beyond their queries.

    A store holds a connection (pool) with its forks, and the last of them to close lets it go.
    Its serialized state names a thread and a namespace (a key prefix, a schema), never the
    connection, so restoring checks the namespace rather than trusting it.
    """

    kind: ClassVar[str]
    namespace_option: ClassVar[str]
    """The constructor option naming the namespace, e.g. ``"key_prefix"``; saved in the state."""
    thread_id: str
    _shared: SharedResource
    _closed: bool
    _cache: HistoryCache

    def _namespace(self) -> str:
        return getattr(self, self.namespace_option)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Let go of the connection; the last store of a fork family made from a URL closes it."""
        if not self._closed:
            self._closed = True
            await self._shared.release()

    async def serialize(self) -> dict[str, JSONValue]:
        """The thread id and the namespace; never the URL, which may hold a password."""
        return {"thread_id": self.thread_id, self.namespace_option: self._namespace()}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Point this store at the thread ``state`` names, on this store's connection.

        Raises:
            ThreadStateError: the state has no thread id, or was saved in another namespace.
        """
        thread_id = state.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id:
            raise ThreadStateError(
                f"{self.kind} store state needs a 'thread_id' string, got {thread_id!r}"
            )
        option, mine = self.namespace_option, self._namespace()
        saved = state.get(option, mine)
        if saved != mine:
            raise ThreadStateError(
                f"{self.kind} thread {thread_id!r} was saved with {option}={saved!r}, but this "
                f"store uses {option}={mine!r}; configure the store with {option}={saved!r}"
            )
        self.thread_id = check_thread_id(thread_id, field=f"{self.kind} store state's thread_id")
        self._cache = HistoryCache()

    def _sibling(self, thread_id: str) -> Self:
        """A store for another thread (a fork, say) sharing this one's connection."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.thread_id = thread_id
        other._closed = False
        other._cache = HistoryCache()
        self._shared.acquire()
        return other
