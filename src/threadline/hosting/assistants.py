"""Assistants API placeholder (filled in below)."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    """The Assistants routes."""
    return []
