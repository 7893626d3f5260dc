"""Turning saved store state back into a store: a factory, a registered kind, or a built-in.

Stores on a server (Redis, PostgreSQL) never save their connection with the thread, since it may
hold a password; only the caller can say how to reach them. So a restore looks, in order, for:

1. the ``chat_message_store_factory`` the agent was given (a fresh store is made and then pointed
   at the saved thread with ``load_state``);
2. a builder registered for the kind with :func:`register_store_kind`, e.g. at application start;
3. the built-in kinds that need no configuration (``memory``, ``sqlite``).

The server kinds (``redis``, ``postgres``) are known by name, so restoring one without a factory
or builder fails with an error that says how to configure it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from threadline.exceptions import ThreadStateError
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.stores.memory import ChatMessageList

__all__ = ["StoreBuilder", "register_store_kind", "restore_store"]

StoreBuilder = Callable[[Mapping[str, Any]], ChatMessageStore]
"""Makes a store for a saved state (it is then given the state with ``load_state``)."""

_registered: dict[str, StoreBuilder] = {}

_SERVER_KINDS = {
    "redis": "RedisChatMessageStore(client=redis_client)",
    "postgres": "PostgresChatMessageStore(pool=pg_pool)",
}


def register_store_kind(kind: str, builder: StoreBuilder | None) -> None:
    """Say how to make stores of ``kind`` when a thread is restored without a store factory.

    ``builder`` receives the saved store state (which never holds a secret) and returns a store
    configured with the connection to use. Pass ``None`` to remove a registration.
    """
    if builder is None:
        _registered.pop(kind, None)
    else:
        _registered[kind] = builder


async def _builtin(kind: str, state: Mapping[str, Any]) -> ChatMessageStore | None:
    builder = _registered.get(kind)
    if builder is not None:
        return builder(state)
    if kind == ChatMessageList.kind:
        return ChatMessageList()
    if kind == "sqlite":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        # Off the event loop: it checks the file the state names exists and is a threadline one.
        return await asyncio.to_thread(SQLiteChatMessageStore.from_state, state)
    if kind in _SERVER_KINDS:
        example = _SERVER_KINDS[kind]
        raise ThreadStateError(
            f"thread state holds a {kind!r} store, whose connection is not saved with the "
            f"thread (it may hold a password); pass chat_message_store_factory=lambda: {example} "
            f"to the agent, or call register_store_kind({kind!r}, ...) at start-up"
        )
    return None


async def restore_store(
    kind: str,
    state: Mapping[str, Any],
    factory: Callable[[], ChatMessageStore] | None,
) -> ChatMessageStore:
    """Make a store of ``kind`` holding ``state``.

    A caller-given factory wins: it carries configuration the state leaves out on purpose
    (connections, credentials). Without one, registered and built-in kinds are used.

    Raises:
        ThreadStateError: the kind is unknown, or differs from what the factory makes.
    """
    if factory is not None:
        store = factory()
        made = store_kind(store)
        if made != kind:
            raise ThreadStateError(
                f"thread state holds a {kind!r} store, but the agent's chat_message_store_factory "
                f"makes {made!r} stores; restore it with an agent configured for {kind!r}"
            )
    else:
        built = await _builtin(kind, state)
        if built is None:
            raise ThreadStateError(
                f"thread state holds a store of kind {kind!r}, which is not built in; pass "
                "chat_message_store_factory to the agent so it can make one"
            )
        store = built
    await store.load_state(state)
    return store
