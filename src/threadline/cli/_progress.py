"""A spinner on stderr while the user waits (model loading, first token), only on a terminal.

Pipes and files get nothing: a script reading the output must see only the reply.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from typing import TextIO

__all__ = ["Spinner"]

_FRAMES = "|/-\\"
_INTERVAL = 0.1


class Spinner:
    """``start(label)`` shows ``label`` with a turning bar until ``stop()``; both are idempotent.

    Must be used inside a running event loop; the animation is a task owned by this object.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._task: asyncio.Task[None] | None = None
        self._width = 0

    async def _spin(self, label: str) -> None:
        for frame in itertools.cycle(_FRAMES):
            text = f"\r{frame} {label}"
            self._width = len(text)
            self._stream.write(text)
            self._stream.flush()
            await asyncio.sleep(_INTERVAL)

    def start(self, label: str) -> None:
        """Begin showing ``label`` (replacing any label shown now)."""
        if not self.enabled:
            return
        self.stop()
        self._task = asyncio.get_running_loop().create_task(self._spin(label))

    def stop(self) -> None:
        """Stop and erase the spinner line."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        self._stream.write("\r" + " " * self._width + "\r")
        self._stream.flush()

    async def __aenter__(self) -> Spinner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()
