"""A third-party MCP server from the registry, over stdio: ``mcp-server-time`` (pinned in the
``test`` extra), started as its users start it (``python -m mcp_server_time``)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime

import pytest_asyncio

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    MCPStdioTool,
    ScriptedChatClient,
)


@pytest_asyncio.fixture
async def time_server() -> AsyncIterator[MCPStdioTool]:
    tool = MCPStdioTool(
        "time", sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]
    )
    yield tool
    await tool.aclose()


async def test_an_agent_uses_the_time_servers_tools(time_server: MCPStdioTool) -> None:
    arguments = {"source_timezone": "Europe/Paris", "time": "12:30", "target_timezone": "UTC"}
    client = ScriptedChatClient(
        [
            [
                FunctionCallContent(
                    call_id="c1",
                    name="get_current_time",
                    arguments=json.dumps({"timezone": "Asia/Tokyo"}),
                ),
                FunctionCallContent(
                    call_id="c2", name="convert_time", arguments=json.dumps(arguments)
                ),
                FunctionCallContent(
                    call_id="c3",
                    name="get_current_time",
                    arguments=json.dumps({"timezone": "Mars/Olympus"}),
                ),
            ],
            "It is later in Tokyo.",
        ]
    )
    response = await ChatAgent(client, tools=[time_server]).run("What time is it in Tokyo?")
    offered = {t.name: t for t in client.calls[0].options.get("tools", [])}
    assert set(offered) == {"get_current_time", "convert_time"}
    assert (
        "IANA timezone"
        in offered["get_current_time"].parameters["properties"]["timezone"]["description"]
    )
    results = {
        c.call_id: c
        for m in response.messages
        for c in m.contents
        if isinstance(c, FunctionResultContent)
    }
    now = results["c1"].result
    assert isinstance(now, dict) and now["timezone"] == "Asia/Tokyo"
    assert datetime.fromisoformat(str(now["datetime"])).utcoffset() is not None
    converted = results["c2"].result
    assert isinstance(converted, dict)
    source, target = converted["source"], converted["target"]
    assert isinstance(source, dict) and isinstance(target, dict)
    assert target["timezone"] == "UTC"
    # The same instant, written in the other zone.
    assert datetime.fromisoformat(str(target["datetime"])) == datetime.fromisoformat(
        str(source["datetime"])
    )
    assert str(source["datetime"])[11:16] == "12:30"
    assert results["c3"].exception is not None and "Invalid timezone" in results["c3"].exception
    assert response.text == "It is later in Tokyo."
