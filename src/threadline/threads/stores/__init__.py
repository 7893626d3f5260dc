"""Message stores for local threads; the SQLite store loads lazily on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.stores.memory import ChatMessageList

if TYPE_CHECKING:
    from threadline.threads.stores.sqlite import SQLiteChatMessageStore

__all__ = ["ChatMessageList", "ChatMessageStore", "SQLiteChatMessageStore", "store_kind"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteChatMessageStore":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        return SQLiteChatMessageStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
