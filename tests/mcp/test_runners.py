"""MCP tools in every runner: a group chat participant and a handoff target use the server's tools,
and the runners' derived agents (``ChatAgent.replace``) keep them."""

from __future__ import annotations

import json

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    GroupChat,
    Handoff,
    ScriptedChatClient,
)
from threadline.agents.chat_agent import ChatAgent as _Agent

from .conftest import Servers


def add(call_id: str, a: int, b: int) -> list[FunctionCallContent]:
    return [
        FunctionCallContent(call_id=call_id, name="add", arguments=json.dumps({"a": a, "b": b}))
    ]


def tool_results(messages: list[object]) -> list[object]:
    return [
        c.result
        for m in messages
        for c in getattr(m, "contents", ())
        if isinstance(c, FunctionResultContent)
    ]


async def test_a_group_chat_participant_uses_an_mcp_server(servers: Servers) -> None:
    demo = servers.stdio()
    calculator = ChatAgent(
        ScriptedChatClient([add("c1", 2, 2), "Four."]), name="calc", tools=[demo]
    )
    poet = ChatAgent(ScriptedChatClient(["Four, a square."]), name="poet")
    chat = GroupChat([calculator, poet], max_rounds=2)
    response = await chat.run("What is 2 + 2, in verse?")
    assert [m.author_name for m in response.messages if m.text] == ["calc", "poet"]
    assert tool_results(list(response.messages)) == [{"result": 4}]
    # The poet saw the calculator's tool traffic as text, never the call itself.
    poet_thread = response.thread.participants["poet"].message_store
    assert poet_thread is not None
    texts = [m.text for m in await poet_thread.list_messages()]
    assert '[tool add returned {"result": 4}]' in texts


async def test_a_handoff_target_uses_an_mcp_server(servers: Servers) -> None:
    demo = servers.stdio()
    triage = ChatAgent(
        ScriptedChatClient(
            [[FunctionCallContent(call_id="h1", name="transfer_to_calc", arguments="{}")]]
        ),
        name="triage",
    )
    calc = ChatAgent(ScriptedChatClient([add("c1", 40, 2), "It is 42."]), name="calc", tools=[demo])
    handoff = Handoff([triage, calc], context_providers=[])
    response = await handoff.run("Add 40 and 2.")
    assert response.last_text == "It is 42."
    assert {"result": 42} in tool_results(list(response.messages))
    # The runner's own view of the agent (with its providers) kept the tool source.
    assert isinstance(handoff.agents["calc"], _Agent)
    assert handoff.agents["calc"].tool_sources == (demo,)
    derived = calc.replace(name="calc2")
    assert derived.tool_sources == (demo,)
