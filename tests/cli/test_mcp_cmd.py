"""``threadline mcp`` as a real process, driven by threadline's own MCP tools (the SDK's client).

One user's memory over stdio, several users by bearer key over streamable HTTP, an agent as
``ask_<name>``; and that no argument reaches another user's memory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline import MCPStdioTool, MCPStreamableHTTPTool, ToolServerError
from threadline.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
AGENT_MODULE = '''
from threadline import ChatAgent, ChatResponse, ChatMessage, Role


class Counting:
    """Answers how many messages it was sent: shows the thread goes on between calls."""

    service_name = "counting"
    stores_history = False

    async def get_response(self, messages, options=None):
        seen = [m.text for m in messages if m.role == Role.USER]
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, f"{len(seen)}: {seen[-1]}"),))

    async def get_streaming_response(self, messages, options=None):
        raise NotImplementedError


helper = ChatAgent(Counting(), name="helper", description="counts messages")
'''


def _env(home: Path) -> dict[str, str]:
    return {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{home}", "THREADLINE_HOME": str(home)}


def _stdio(home: Path, *args: str) -> MCPStdioTool:
    return MCPStdioTool(
        "memory",
        sys.executable,
        args=["-m", "threadline.cli.main", "mcp", *args],
        env=_env(home),
        cwd=home,
    )


def _properties(tool: Any) -> set[str]:
    return set(tool.parameters.get("properties", {}))


async def test_stdio_serves_one_users_memory_and_no_argument_reaches_another(
    tmp_path: Path,
) -> None:
    async with _stdio(tmp_path, "--user", "alice") as alice:
        tools = {t.name: t for t in await alice.get_tools()}
        assert set(tools) == {"remember", "recall", "forget"}
        # No tool takes a user: whose memory it is was fixed when the server started.
        assert [_properties(t) for t in tools.values()] == [{"fact"}, {"query"}, {"memory_id"}]
        saved = await alice.call("remember", {"fact": "Alice is vegetarian."})
        assert isinstance(saved, str) and saved.startswith("Remembered as mem_")
        memory_id = saved.removeprefix("Remembered as ").rstrip(".")
        found = await alice.call("recall", {"query": "vegetarian food"})
        assert isinstance(found, str) and "Alice is vegetarian." in found

    async with _stdio(tmp_path, "--user", "bob") as bob:
        assert (
            await bob.call("recall", {"query": "vegetarian"}) == "Nothing relevant is remembered."
        )
        # Arguments naming alice are ignored, never obeyed: bob's server reaches bob's memory.
        crafted = {"query": "vegetarian", "user_id": "alice", "user": "alice", "scope": "alice"}
        assert await bob.call("recall", crafted) == "Nothing relevant is remembered."
        refused = await bob.call("forget", {"memory_id": memory_id})
        assert refused == f"No memory {memory_id!r} of this user exists; nothing was forgotten."

    # What alice's server remembered is the library's memory: `threadline memory` sees it.
    async with _stdio(tmp_path, "--user", "alice") as again:
        assert "Alice is vegetarian." in str(await again.call("recall", {"query": "vegetarian"}))
        assert await again.call("forget", {"memory_id": memory_id}) == f"Forgot {memory_id}."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_memory(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "helper_agent.py").write_text(AGENT_MODULE)
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "mcp",
            "--http",
            f"127.0.0.1:{port}",
            "--api-key",
            "key-a=alice",
            "--api-key",
            "key-b=bob",
            "--agent",
            "helper_agent:helper",
        ],
        env={**os.environ, **_env(tmp_path)},
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stderr:
            process.stderr.close()


async def test_http_serves_each_key_its_own_users_memory(http_memory: str) -> None:
    def as_key(key: str | None) -> MCPStreamableHTTPTool:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return MCPStreamableHTTPTool("memory", http_memory, headers=headers, connect_timeout=20)

    async with as_key("key-a") as alice, as_key("key-b") as bob:
        saved = str(await alice.call("remember", {"fact": "Alice's cat is called Miso."}))
        memory_id = saved.removeprefix("Remembered as ").rstrip(".")
        assert "Miso" in str(await alice.call("recall", {"query": "cat name"}))
        assert await bob.call("recall", {"query": "cat Miso"}) == "Nothing relevant is remembered."
        assert "nothing was forgotten" in str(await bob.call("forget", {"memory_id": memory_id}))
        assert "Miso" in str(await alice.call("recall", {"query": "cat name"}))
        crafted = {"query": "cat Miso", "user_id": "alice", "api_key": "key-a"}
        assert await bob.call("recall", crafted) == "Nothing relevant is remembered."

        # The agent: one thread per caller, which goes on between calls.
        assert {t.name for t in await alice.get_tools()} >= {"ask_helper"}
        assert await alice.call("ask_helper", {"message": "hello"}) == "1: hello"
        assert await alice.call("ask_helper", {"message": "again"}) == "2: again"
        assert await bob.call("ask_helper", {"message": "hi"}) == "1: hi"

    for key in (None, "key-c"):
        stranger = as_key(key)
        with pytest.raises(ToolServerError, match="could not connect to MCP server 'memory'"):
            await stranger.connect()
        await stranger.aclose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "127.0.0.1:0x"], "--http takes HOST:PORT"),
        (["--http", "127.0.0.1:8765"], "--http needs at least one --api-key"),
        (["--http", "127.0.0.1:8765", "--user", "x", "--api-key", "k=x"], "instead of --user"),
        (["--user", ""], "--user must name someone"),
        (["--user", "a\x1b[2Jb"], "holds control characters"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    os.environ.pop("THREADLINE_API_KEYS", None)
    assert main(["--home", str(tmp_path), "mcp", *args]) == 1
    assert message in capsys.readouterr().err
