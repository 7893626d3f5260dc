"""Long-term memory stores: ``SQLiteMemoryStore`` (embedded default), ``PostgresMemoryStore``.

``PostgresMemoryStore`` needs the ``postgres`` extra and is imported on first use, so importing
this package never needs psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.memory.stores._ranking import Fusion
from threadline.memory.stores.sqlite import SQLiteMemoryStore

if TYPE_CHECKING:
    from threadline.memory.stores.postgres import PostgresMemoryStore

__all__ = ["Fusion", "PostgresMemoryStore", "SQLiteMemoryStore"]


def __getattr__(name: str) -> Any:
    if name == "PostgresMemoryStore":
        from threadline.memory.stores.postgres import PostgresMemoryStore

        return PostgresMemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
