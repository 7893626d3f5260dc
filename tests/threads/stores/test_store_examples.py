"""The store examples run and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import threadline

EXAMPLES = Path(__file__).parents[3] / "examples" / "stores"
SRC = str(Path(threadline.__file__).resolve().parent.parent)


def run_example(name: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_encrypted_sqlite_example() -> None:
    out = run_example("encrypted_sqlite.py")
    assert "Agent: Your PIN is 4321." in out
    assert "PIN visible in the database file: False" in out
    assert "newest messages within 20 tokens: ['What is my PIN?', 'Your PIN is 4321.']" in out
    assert "encrypted with a different master key" in out


def test_shared_servers_example(redis_url: str, postgres_url: str) -> None:
    out = run_example(
        "shared_servers.py", THREADLINE_REDIS_URL=redis_url, THREADLINE_POSTGRES_URL=postgres_url
    )
    for kind in ("redis", "postgres"):
        assert f"{kind}: Agent: You are Alice." in out
        assert f"{kind}: fork holds 4 messages" in out
    assert "password" not in out and "postgresql://" not in out
