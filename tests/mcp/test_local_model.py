"""The embedded model uses an MCP server's tool: it decides by itself to call it, the call goes to
the server, and it answers from the server's result."""

from __future__ import annotations

from pathlib import Path

from threadline import ChatAgent, ChatOptions, FunctionCallContent, FunctionResultContent
from threadline.clients.local import LocalChatClient

from .conftest import Servers


async def test_the_embedded_model_calls_an_mcp_tool(
    local_model_path: Path, servers: Servers
) -> None:
    demo = servers.stdio(allowed_tools=["weather"])
    client = LocalChatClient(local_model_path)
    try:
        agent = ChatAgent(
            client,
            "You are a helpful assistant.",
            tools=[demo],
            default_options=ChatOptions(max_tokens=64, temperature=0.0),
        )
        response = await agent.run("What is the weather in Paris?")
    finally:
        await client.aclose()
    calls = [c for m in response.messages for c in m.contents if isinstance(c, FunctionCallContent)]
    assert [(c.name, c.parse_arguments()) for c in calls] == [("weather", {"city": "Paris"})]
    results = [
        c for m in response.messages for c in m.contents if isinstance(c, FunctionResultContent)
    ]
    assert results[0].result == {"city": "Paris", "celsius": 21.5}  # the server's answer
    print(f"answer: {response.text!r}")
    assert "21" in response.text
