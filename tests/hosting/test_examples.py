"""The server and OpenAI examples run and print what their docstrings promise."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("examples/server/host_an_agent.py", ["Hello Ada!", "Your name is Ada."]),
        (
            "examples/openai/service_managed_threads.py",
            ["Noted: you like tea.", "You like tea.", "Hi!"],
        ),
    ],
)
async def test_example_runs(script: str, expected: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / script),
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    for text in expected:
        assert text in lines
