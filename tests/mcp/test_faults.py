"""MCP servers that exit, hang, fail or describe their tools badly: a clear error, no hang, and no
server process left behind (the ``servers`` fixture fails a test that leaks one)."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import pytest

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    MCPStdioTool,
    MCPStreamableHTTPTool,
    ScriptedChatClient,
    ToolServerError,
)

from .conftest import Servers, free_port


def call(name: str, call_id: str = "c1", **arguments: Any) -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def error_of(response: Any, call_id: str = "c1") -> str:
    for message in response.messages:
        for content in message.contents:
            if isinstance(content, FunctionResultContent) and content.call_id == call_id:
                assert content.exception is not None, content
                return content.exception
    raise AssertionError(f"no result for {call_id}")


async def test_a_server_that_dies_between_calls_is_restarted_once(servers: Servers) -> None:
    demo = servers.stdio()
    first = await demo.call("whoami")
    assert isinstance(first, dict)
    pid = int(str(first["result"]))
    assert servers.pids() == [pid]
    os.kill(pid, signal.SIGKILL)  # the server dies while idle
    second = await demo.call("whoami")  # found gone, restarted, sent again
    assert isinstance(second, dict) and second["result"] != pid
    assert servers.alive() == [second["result"]]


async def test_a_server_that_dies_during_a_call_fails_that_call_and_the_run_goes_on(
    servers: Servers,
) -> None:
    client = ScriptedChatClient([[call("crash")], "It broke.", [call("add", a=1, b=2)], "3."])
    agent = ChatAgent(client, tools=[servers.stdio()])
    thread = agent.get_new_thread()
    response = await agent.run("Crash it.", thread=thread)
    assert response.text == "It broke."
    message = error_of(response)
    assert "closed the connection during the call of tool 'crash', again after a restart" in (
        message
    )
    # The crash was sent to a restarted server once more (reconnected once), then given up.
    assert len(servers.pids()) == 2 and servers.alive() == []
    # The next call starts the server again.
    later = await agent.run("Add.", thread=thread)
    assert later.text == "3." and len(servers.pids()) == 3


async def test_a_hung_call_times_out_and_the_server_is_stopped_on_close(servers: Servers) -> None:
    demo = servers.stdio(request_timeout=1)
    client = ScriptedChatClient([[call("hang"), call("add", "c2", a=1, b=1)], "Partly."])
    response = await ChatAgent(client, tools=[demo]).run("Go.")
    assert (
        error_of(response) == "MCP server 'demo' did not answer the call of tool 'hang' within 1 s"
    )
    assert response.messages[1].contents[1] == FunctionResultContent(
        call_id="c2", result={"result": 2}
    )
    await demo.aclose()  # the server is still busy hanging: it is stopped anyway
    assert servers.alive() == []


async def test_a_server_that_exits_at_start_is_reported_with_its_last_words(
    servers: Servers,
) -> None:
    client = ScriptedChatClient([])
    with pytest.raises(ToolServerError, match="raw-exit.*no configuration found"):
        await ChatAgent(client, tools=[servers.raw("exit")]).run("Hi.")
    assert client.calls == []


async def test_a_server_that_never_answers_the_handshake_is_stopped(servers: Servers) -> None:
    silent = servers.raw("silent", connect_timeout=1)
    with pytest.raises(ToolServerError, match="did not complete the connection within 1 s"):
        await silent.connect()
    assert len(servers.pids()) == 1 and servers.alive() == []


async def test_a_malformed_schema_is_refused_naming_the_tool(servers: Servers) -> None:
    client = ScriptedChatClient([])
    with pytest.raises(
        ToolServerError,
        match=r"raw-bad-schema' sent a malformed answer to tools/list: tools.0.inputSchema.type",
    ):
        await ChatAgent(client, tools=[servers.raw("bad-schema")]).run("Hi.")
    with pytest.raises(ToolServerError, match=r"tool named 'look up/now'.*allowed_tools"):
        await ChatAgent(client, tools=[servers.raw("bad-name")]).run("Hi.")
    # Leaving the tool out is the way around a tool threadline cannot offer.
    fine = ScriptedChatClient(["ok"])
    await ChatAgent(fine, tools=[servers.raw("bad-name", allowed_tools=[])]).run("Hi.")
    assert "tools" not in fine.calls[0].options
    assert client.calls == []


async def test_a_command_that_does_not_exist(servers: Servers) -> None:
    missing = MCPStdioTool("ghost", "/nonexistent/mcp-server")
    with pytest.raises(ToolServerError, match="could not connect to MCP server 'ghost'.*nonexist"):
        await missing.connect()
    await missing.aclose()


async def test_an_http_server_that_is_not_there() -> None:
    nobody = MCPStreamableHTTPTool("away", f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(ToolServerError, match="could not connect to MCP server 'away'"):
        await nobody.connect()
    await nobody.aclose()


def test_the_stdio_tool_refuses_a_string_of_arguments() -> None:
    from threadline import UsageError

    with pytest.raises(UsageError, match="args must be a list"):
        MCPStdioTool("x", sys.executable, args="-m server")
