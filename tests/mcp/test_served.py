"""A served agent may use MCP tools: ``threadline serve`` (unchanged) hosts an agent whose tools
come from an MCP server, driven by the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from tests.cli.test_serve_cmd import serving

from .conftest import alive


async def test_a_served_agent_calls_its_mcp_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pids"
    monkeypatch.setenv("SERVED_PID_FILE", str(pid_file))
    async with serving("tests.mcp._served_agent:agent", "--db", str(tmp_path / "s.db")) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            response = await client.responses.create(input="What is 2 + 3?")
    # The answer comes after the tool's result: the model's second call follows the MCP call.
    assert response.output_text == "The sum is 5."
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 1  # one MCP server, started on first use
    # When `threadline serve` stops, its MCP server's stdin closes and it exits too.
    for _ in range(100):
        if not alive(pids[0]):
            break
        await asyncio.sleep(0.1)
    assert not alive(pids[0])
