"""The web UI: pages over threads, forks, memories and traces, served from the package.

The pages are plain HTML, CSS and JavaScript shipped inside the package (no CDN, no build step);
they read a small JSON API that :func:`ui_routes` mounts under ``/ui/``. Where the data comes
from is a :class:`UiSource`: ``threadline serve`` plugs in its conversations (one API key sees
only its account's), ``threadline ui`` the local home of the ``threadline`` command.
"""

from __future__ import annotations

from threadline.ui.app import ui_routes
from threadline.ui.source import (
    Authenticate,
    MemoryEntry,
    ThreadEntry,
    ThreadView,
    UiSource,
)
from threadline.ui.spans import SpanBuffer

__all__ = [
    "Authenticate",
    "MemoryEntry",
    "SpanBuffer",
    "ThreadEntry",
    "ThreadView",
    "UiSource",
    "ui_routes",
]
