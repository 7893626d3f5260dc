"""Helpers the server-backed stores share: redacting URLs and sharing one client among forks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SharedResource", "redact_url"]


def redact_url(url: str) -> str:
    """``url`` without its password, for error messages and logs.

    Secrets in a connection URL must never reach an error message, a log or a serialized thread.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, ""))


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
