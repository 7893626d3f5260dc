"""Finishing the hosted agent's background work when the server stops.

A memory component learns after the answer is sent: ``UserPreferencesMemory`` extracts facts in
background tasks. uvicorn's graceful shutdown (SIGTERM, Ctrl-C) waits for open requests, not for
such tasks, and the event loop then cancels them, so a stopped server silently forgot what it
was learning. The app's shutdown drains them here first, within a bound, and says what it had
to drop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from threadline.agents.chat_agent import ChatAgent

__all__ = ["Drains", "drain_agent"]

log = logging.getLogger("threadline.hosting")


@runtime_checkable
class Drains(Protocol):
    """A component with background work: ``drain`` finishes it, cancels what overruns."""

    async def drain(self, seconds: float | None = None) -> int:
        """Wait up to ``seconds``; cancel what is left and return how much that was."""
        ...


async def drain_agent(agent: ChatAgent, seconds: float) -> int:
    """Let ``agent``'s memory components finish their background work, ``seconds`` in all.

    Returns how many tasks were still running at the bound and were dropped (each logged).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, seconds)
    dropped = 0
    for provider in agent.context_providers:
        if not isinstance(provider, Drains):
            continue
        late = await provider.drain(max(0.0, deadline - loop.time()))
        if late:
            log.warning(
                "shutdown: %d background task(s) of %s still running after %.1fs were dropped "
                "(what they were learning is lost; a longer --drain-seconds lets them finish)",
                late,
                type(provider).__name__,
                seconds,
            )
        dropped += late
    return dropped
