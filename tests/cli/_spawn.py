"""Starting ``threadline chat`` as a subprocess, the way the CLI tests all do.

One environment (this checkout's ``src`` first on the path, a private ``$THREADLINE_HOME``, a
dumb terminal so readline writes no escape sequences into the transcript) and one way to start
an interactive chat and wait for its first prompt.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pexpect

__all__ = ["cli_env", "spawn_cli"]

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli_env(home: Path) -> dict[str, str]:
    """This process's environment, with this checkout importable and ``home`` as the CLI's home."""
    return {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "THREADLINE_HOME": str(home),
        "TERM": "dumb",
    }


def spawn_cli(
    home: Path,
    args: Sequence[str],
    opened: str,
    *,
    timeout: float,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[pexpect.spawn[str], str]:
    """``threadline chat ARGS`` at its first prompt, and the id ``opened``'s last group captured.

    ``opened`` is the pattern of the line naming the thread or group the chat opened.
    """
    child: pexpect.spawn[str] = pexpect.spawn(
        sys.executable,
        ["-m", "threadline.cli.main", "chat", *args],
        env=cli_env(home),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(50, 200),
        preexec_fn=preexec_fn,
    )
    child.expect(opened)
    match = child.match
    assert isinstance(match, re.Match)
    opened_id = str(match.group(match.lastindex or 0))
    child.expect("you> ")
    return child, opened_id
