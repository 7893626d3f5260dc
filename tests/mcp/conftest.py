"""Real MCP servers for the tests: the SDK-written demo server over stdio and HTTP, and a
misbehaving hand-written one. Each records its process id: a test can prove none outlives it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from threadline import MCPStdioTool
from threadline.mcp import MCPTool

HERE = Path(__file__).parent
DEMO = str(HERE / "demo_server.py")
RAW = str(HERE / "raw_server.py")


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class Servers:
    """Makes MCP tools over test servers and closes them all afterwards."""

    pid_file: Path
    made: list[MCPTool] = field(default_factory=lambda: [])

    def pids(self) -> list[int]:
        if not self.pid_file.exists():
            return []
        return [int(line) for line in self.pid_file.read_text().split()]

    def alive(self) -> list[int]:
        """The servers still running; one that is exiting is given up to 5 s to finish."""
        deadline = time.monotonic() + 5
        while True:
            running = [pid for pid in self.pids() if alive(pid)]
            if not running or time.monotonic() > deadline:
                return running
            time.sleep(0.05)

    def stdio(self, script: str = DEMO, *args: str, **kw: Any) -> MCPStdioTool:
        tool = MCPStdioTool(
            kw.pop("name", "demo"),
            sys.executable,
            args=[script, *args],
            env={"DEMO_PID_FILE": str(self.pid_file)},
            **kw,
        )
        self.made.append(tool)
        return tool

    def raw(self, mode: str, **kw: Any) -> MCPStdioTool:
        return self.stdio(RAW, mode, name=f"raw-{mode}", **kw)


@pytest_asyncio.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    made = Servers(tmp_path / "pids")
    yield made
    for tool in made.made:
        await tool.aclose()
    assert made.alive() == [], "an MCP server outlived the test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts the demo server over streamable HTTP on loopback; returns its MCP URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(token: str | None = None) -> str:
        port = free_port()
        env = {**os.environ, "DEMO_PID_FILE": str(tmp_path / "http-pids")}
        if token:
            env["DEMO_TOKEN"] = token
        process = subprocess.Popen([sys.executable, DEMO, "--http", str(port)], env=env)
        started.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}/mcp"
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the demo HTTP server did not start (exit {process.poll()})")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)
