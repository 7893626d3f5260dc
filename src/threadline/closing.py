"""One way to close: the ``aclose()`` / ``async with`` protocol of clients and stores.

Whatever holds a resource (an HTTP client, a model in memory, a connection pool, a SQLite worker
thread) releases it with ``await obj.aclose()``, and is its own async context manager, so
``async with`` does the same. Closing twice is harmless. Objects that hold nothing need not
implement it; code that closes what it was given checks :class:`SupportsAclose` instead of guessing
method names.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SupportsAclose", "aclose_if_closable"]


@runtime_checkable
class SupportsAclose(Protocol):
    """Something that holds a resource and lets it go with ``await aclose()``."""

    async def aclose(self) -> None:
        """Release the resource; safe to call more than once."""
        ...


async def aclose_if_closable(obj: object) -> None:
    """``await obj.aclose()`` when ``obj`` implements :class:`SupportsAclose`; otherwise nothing."""
    if isinstance(obj, SupportsAclose):
        await obj.aclose()
