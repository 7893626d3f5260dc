"""Long-term memory stores: ``SQLiteMemoryStore``, the embedded default."""

from __future__ import annotations

from threadline.memory.stores._ranking import Fusion
from threadline.memory.stores.sqlite import SQLiteMemoryStore

__all__ = ["Fusion", "SQLiteMemoryStore"]
