"""Private helpers shared across layers; may change without notice."""

from __future__ import annotations

import gc
import os
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

__all__ = ["bulk_allocation", "data_home", "redact_url"]

_BULK = 1_000
"""Below this many items the collector's passes cost too little to be worth pausing."""


@contextmanager
def bulk_allocation(count: int) -> Generator[None]:
    """Pause the cyclic garbage collector while building ``count`` acyclic objects at once.

    Restoring or serializing a long thread allocates tens of thousands of small containers; on
    CPython 3.11 that triggers repeated collector passes over the whole heap, which cost more than
    the work itself (a 10,000-message thread: about twice as long). Messages and their JSON forms
    hold no reference cycles, so nothing is missed by pausing: whatever cycles others create
    meanwhile are collected once the collector is back on. It is only turned back on if it was on.
    """
    if count < _BULK or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def data_home() -> Path:
    """``$THREADLINE_HOME``, or the per-user data directory of this platform.

    Where threadline keeps what it saves by default (the command's threads, long-term memory).
    Shared here rather than in the CLI so lower layers (memory stores) can use it too.
    """
    home = os.environ.get("THREADLINE_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("threadline", appauthor=False))


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
