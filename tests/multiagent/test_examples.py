"""The multi-agent examples run and print what they promise."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples" / "multiagent"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("group_chat.py", "[critic] Ship it.\n-- 7 messages in the transcript"),
        ("handoff.py", "[billing] Refund started.\nfinal: Bark lamps: the forest, glowing."),
    ],
)
async def test_example_runs(name: str, expected: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / name), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert expected in stdout.decode()
