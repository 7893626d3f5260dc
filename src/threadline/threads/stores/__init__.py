"""Message stores for local threads; stores with optional dependencies load lazily on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.threads.stores.base import (
    ChatMessageStore,
    TokenCounter,
    estimate_tokens,
    store_kind,
)
from threadline.threads.stores.codec import JSONCodec, MessageCodec
from threadline.threads.stores.database import (
    PrunableDatabase,
    RecordDatabase,
    ThreadDatabase,
    ThreadInfo,
)
from threadline.threads.stores.memory import ChatMessageList
from threadline.threads.stores.opener import open_database
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.registry import register_store_kind
from threadline.threads.stores.retention import PruneResult
from threadline.threads.stores.staged import StagedStore

if TYPE_CHECKING:
    from threadline.threads.stores.encryption import EncryptedCodec
    from threadline.threads.stores.postgres import PostgresChatMessageStore
    from threadline.threads.stores.postgres_database import PostgresThreadDatabase
    from threadline.threads.stores.redis import RedisChatMessageStore, RedisThreadDatabase
    from threadline.threads.stores.sqlite import SQLiteChatMessageStore
    from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

__all__ = [
    "ChatMessageList",
    "ChatMessageStore",
    "EncryptedCodec",
    "JSONCodec",
    "MessageCodec",
    "PostgresChatMessageStore",
    "PostgresThreadDatabase",
    "PrunableDatabase",
    "PruneResult",
    "RecordDatabase",
    "RedisChatMessageStore",
    "RedisThreadDatabase",
    "SQLiteChatMessageStore",
    "SQLiteThreadDatabase",
    "StagedStore",
    "ThreadBatch",
    "ThreadDatabase",
    "ThreadInfo",
    "ThreadRecord",
    "TokenCounter",
    "estimate_tokens",
    "open_database",
    "register_store_kind",
    "store_kind",
]

_LAZY = {
    "SQLiteChatMessageStore": "threadline.threads.stores.sqlite",
    "RedisChatMessageStore": "threadline.threads.stores.redis",
    "PostgresChatMessageStore": "threadline.threads.stores.postgres",
    "EncryptedCodec": "threadline.threads.stores.encryption",
    "SQLiteThreadDatabase": "threadline.threads.stores.sqlite_database",
    "PostgresThreadDatabase": "threadline.threads.stores.postgres_database",
    "RedisThreadDatabase": "threadline.threads.stores.redis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
