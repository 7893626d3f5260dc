"""Turning a serialized store back into a store: through the caller's factory or a built-in kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from threadline.exceptions import ThreadStateError
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.stores.memory import ChatMessageList

__all__ = ["restore_store"]


def _builtin(kind: str, state: Mapping[str, Any]) -> ChatMessageStore | None:
    if kind == ChatMessageList.kind:
        return ChatMessageList()
    if kind == "sqlite":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        return SQLiteChatMessageStore.from_state(state)
    return None


async def restore_store(
    kind: str,
    state: Mapping[str, Any],
    factory: Callable[[], ChatMessageStore] | None,
) -> ChatMessageStore:
    """Make a store of ``kind`` holding ``state``.

    A caller-given factory wins: it carries configuration the state leaves out on purpose
    (connections, credentials). Without one, built-in kinds are rebuilt from the state alone.

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
        built = _builtin(kind, state)
        if built is None:
            raise ThreadStateError(
                f"thread state holds a store of kind {kind!r}, which is not built in; pass "
                "chat_message_store_factory to the agent so it can make one"
            )
        store = built
    await store.load_state(state)
    return store
