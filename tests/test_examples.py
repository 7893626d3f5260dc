"""Every example runs, and prints what it promises (CI runs the docs' code so it cannot rot)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


async def run_example(path: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(path), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("threads/multi_turn.py", "Agent: We talked about your name."),
        ("threads/fork_and_tools.py", "branch: Then stay inside and read."),
    ],
)
async def test_example_runs(name: str, expected: str) -> None:
    assert expected in await run_example(EXAMPLES / name)


async def test_sqlite_example_resumes_across_processes(tmp_path: Path) -> None:
    script = EXAMPLES / "threads" / "sqlite_resume.py"
    first = await run_example(script, str(tmp_path))
    second = await run_example(script, str(tmp_path))
    assert "resumed" not in first
    assert "resumed a thread of 2 messages" in second
