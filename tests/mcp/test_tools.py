"""MCP tools in an agent: the server's tools become the agent's, over stdio and streamable HTTP.

Against the demo server (tests/mcp/demo_server.py, written with the SDK's ``MCPServer``) started
for real; the model is scripted, so the test knows which calls it makes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, cast

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    MCPStreamableHTTPTool,
    Role,
    ScriptedChatClient,
    ToolServerError,
    UsageError,
    tool,
)

from .conftest import Servers
from .demo_server import PIXEL


def call(name: str, call_id: str = "c1", **arguments: Any) -> FunctionCallContent:
    return FunctionCallContent(call_id=call_id, name=name, arguments=json.dumps(arguments))


def blocks(result: object) -> list[dict[str, Any]]:
    """A result made of MCP content blocks (a list of dicts)."""
    assert isinstance(result, list)
    return cast("list[dict[str, Any]]", result)


def results(response: Any) -> dict[str, FunctionResultContent]:
    return {
        c.call_id: c
        for m in response.messages
        for c in m.contents
        if isinstance(c, FunctionResultContent)
    }


async def test_the_servers_tools_become_the_agents_tools_with_their_schemas(
    servers: Servers,
) -> None:
    demo = servers.stdio()
    assert servers.pids() == []  # nothing starts before the first use
    client = ScriptedChatClient(
        [
            [
                call("add", "c1", a=2, b=3),
                call("shout", "c2", text="hi"),
                call("weather", "c3", city="Oslo"),
                call("picture", "c4"),
            ],
            "Done.",
        ]
    )
    agent = ChatAgent(client, tools=[demo])
    response = await agent.run("Use the tools.")
    assert response.text == "Done."
    offered = {t.name: t for t in client.calls[0].options.get("tools", [])}
    assert {"add", "shout", "weather", "picture", "fail", "crash", "hang", "grow"} <= set(offered)
    assert offered["add"].description == "Add two integers."
    assert offered["add"].parameters["properties"]["a"]["type"] == "integer"
    assert offered["add"].parameters["required"] == ["a", "b"]

    got = results(response)
    assert got["c1"].result == {"result": 5}  # structured content, as the server typed it
    assert got["c2"].result == "HI!"  # text
    assert got["c3"].result == {"city": "Oslo", "celsius": 21.5}
    image = blocks(got["c4"].result)[0]
    assert image["type"] == "image" and image["mimeType"] == "image/png"
    assert base64.b64decode(image["data"]) == PIXEL
    # The tool results were sent back to the model in the next call.
    assert isinstance(client.calls[1].messages[-1].contents[0], FunctionResultContent)
    assert len(servers.pids()) == 1 and servers.alive() == servers.pids()
    await demo.aclose()
    assert servers.alive() == []


async def test_a_tool_error_reaches_the_model_and_the_run_goes_on(servers: Servers) -> None:
    client = ScriptedChatClient([[call("fail", reason="no stock")], "Sorry."])
    response = await ChatAgent(client, tools=[servers.stdio()]).run("Try.")
    assert response.text == "Sorry."
    failed = results(response)["c1"]
    assert failed.exception is not None and "refused: no stock" in failed.exception
    assert "tool 'fail' of MCP server 'demo' failed" in failed.exception


async def test_approval_mode_per_tool_name_holds_a_call_until_approved(servers: Servers) -> None:
    client = ScriptedChatClient(
        [[call("add", "c1", a=2, b=3), call("shout", "c2", text="hi")], "HI and 5."]
    )
    agent = ChatAgent(client, tools=[servers.stdio(approval_mode={"shout": "always_require"})])
    thread = agent.get_new_thread()
    first = await agent.run("Go.", thread=thread)
    (request,) = first.user_input_requests
    assert request.function_call.name == "shout"
    assert set(results(first)) == {"c1"}  # add needs no approval: it ran, shout waits
    answer = ChatMessage(Role.USER, contents=[request.create_response(True)])
    await agent.run(answer, thread=thread)
    sent = client.calls[1].messages
    shouted = [c for m in sent for c in m.contents if isinstance(c, FunctionResultContent)]
    assert [c.call_id for c in shouted] == ["c1", "c2"]
    assert "HI" in json.dumps(shouted[1].result)
    typo = servers.stdio(approval_mode={"shuot": "always_require"})
    with pytest.raises(ToolServerError, match=r"approval_mode names \['shuot'\]"):
        await ChatAgent(ScriptedChatClient([]), tools=[typo]).run("Hi.")
    with pytest.raises(UsageError, match="approval_mode"):
        servers.stdio(approval_mode={"shout": "maybe"})


async def test_allowed_tools_narrows_what_the_model_is_offered(servers: Servers) -> None:
    client = ScriptedChatClient(["Fine."])
    await ChatAgent(client, tools=[servers.stdio(allowed_tools=["add", "shout"])]).run("Hi.")
    assert [t.name for t in client.calls[0].options.get("tools", [])] == ["add", "shout"]
    typo = servers.stdio(allowed_tools=["add", "ad"])
    with pytest.raises(ToolServerError, match=r"allowed_tools names \['ad'\].*offers: add"):
        await ChatAgent(ScriptedChatClient([]), tools=[typo]).run("Hi.")


async def test_async_with_connects_at_once_and_closing_stops_the_server(servers: Servers) -> None:
    demo = servers.stdio()
    async with demo:
        assert len(servers.alive()) == 1
        assert await demo.call("add", {"a": 1, "b": 2}) == {"result": 3}
    assert servers.alive() == []
    # A closed tool connects again when used again: a new server process.
    assert await demo.call("shout", {"text": "again"}) == "AGAIN!"
    assert len(servers.pids()) == 2 and len(servers.alive()) == 1
    await demo.aclose()
    await demo.aclose()  # closing twice is harmless
    assert servers.alive() == []


async def test_an_agent_closes_its_tool_sources_with_it(servers: Servers) -> None:
    demo = servers.stdio()
    async with ChatAgent(ScriptedChatClient(["ok"]), tools=[demo]) as agent:
        await agent.run("Hi.")
        assert len(servers.alive()) == 1
    assert servers.alive() == []


async def test_tools_of_one_run_only(servers: Servers) -> None:
    client = ScriptedChatClient([[call("add", a=1, b=1)], "2", "plain"])
    agent = ChatAgent(client)
    thread = agent.get_new_thread()
    first = await agent.run("Add.", thread=thread, tools=[servers.stdio()])
    assert results(first)["c1"].result == {"result": 2}
    await agent.run("Again, no tools.", thread=thread)
    assert "tools" not in client.calls[2].options


async def test_a_tool_list_change_is_seen_by_the_next_run(servers: Servers) -> None:
    client = ScriptedChatClient([[call("grow")], "Grown.", [call("double", x=21)], "42."])
    agent = ChatAgent(client, tools=[servers.stdio()])
    thread = agent.get_new_thread()
    await agent.run("Grow.", thread=thread)
    assert "double" not in {t.name for t in client.calls[0].options.get("tools", [])}
    response = await agent.run("Double 21.", thread=thread)
    assert "double" in {t.name for t in client.calls[2].options.get("tools", [])}
    assert results(response)["c1"].result == {"result": 42}


async def test_a_name_taken_twice_is_refused_before_any_model_call(servers: Servers) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Local add."""
        return a + b

    client = ScriptedChatClient([])
    with pytest.raises(UsageError, match="tool source 'demo' offers a tool named 'add'"):
        await ChatAgent(client, tools=[add, servers.stdio()]).run("Hi.")
    assert client.calls == []


async def test_streamable_http_with_headers(http_server: Callable[..., str]) -> None:
    url = http_server(token="s3cret")
    client = ScriptedChatClient([[call("add", a=20, b=22), call("picture", "c2")], "42."])
    remote = MCPStreamableHTTPTool("remote", url, headers={"Authorization": "Bearer s3cret"})
    async with ChatAgent(client, tools=[remote]) as agent:
        response = await agent.run("Add.")
    got = results(response)
    assert got["c1"].result == {"result": 42}
    assert blocks(got["c2"].result)[0]["type"] == "image"
    # Without the key the server refuses: a clear error before any model call.
    refused = ScriptedChatClient([])
    anonymous = MCPStreamableHTTPTool("remote", url, connect_timeout=10)
    with pytest.raises(ToolServerError, match="could not connect to MCP server 'remote'"):
        await ChatAgent(refused, tools=[anonymous]).run("Add.")
    assert refused.calls == []
    await anonymous.aclose()


def test_bad_arguments_are_refused_when_the_tool_is_made() -> None:
    with pytest.raises(UsageError, match="allowed_tools must be a list"):
        MCPStreamableHTTPTool("x", "http://127.0.0.1:1/mcp", allowed_tools="add")
    with pytest.raises(UsageError, match="url must be an http"):
        MCPStreamableHTTPTool("x", "127.0.0.1:1/mcp")
    with pytest.raises(ValueError, match="request_timeout must be a positive"):
        MCPStreamableHTTPTool("x", "http://127.0.0.1:1/mcp", request_timeout=0)
