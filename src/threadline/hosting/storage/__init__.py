"""Where the server keeps responses, conversations, assistants, threads and their items."""

from __future__ import annotations

from threadline.hosting.storage.base import (
    IdempotencyRecord,
    ItemsChangedError,
    ServerStorage,
    StoredObject,
)

__all__ = ["IdempotencyRecord", "ItemsChangedError", "ServerStorage", "StoredObject"]
