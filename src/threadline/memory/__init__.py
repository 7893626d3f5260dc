"""Memory components: context providers and what they add to a model call."""

from __future__ import annotations

from threadline.memory.context import Context
from threadline.memory.provider import ContextProvider

__all__ = ["Context", "ContextProvider"]
