"""ScriptedChatClient is public API: its own promises get tests too."""

from __future__ import annotations

import pytest

from threadline import ChatAgent, ChatMessage, ClientError, Role, ScriptedChatClient
from threadline.clients.base import ChatClient


def test_it_is_a_chat_client() -> None:
    assert isinstance(ScriptedChatClient([]), ChatClient)


async def test_running_out_of_replies_is_a_clear_error() -> None:
    client = ScriptedChatClient(["only one"])
    agent = ChatAgent(client)
    await agent.run("a")
    with pytest.raises(ClientError, match="no reply left for call 2; the script held 1"):
        await agent.run("b")


async def test_unused_replies_are_reported() -> None:
    client = ScriptedChatClient(["a", "b"])
    await ChatAgent(client).run("x")
    with pytest.raises(AssertionError, match="1 scripted reply unused after 1 call"):
        client.assert_all_replies_used()
    client.add_replies("c")
    assert client.remaining == 2


async def test_a_service_refuses_conversations_it_never_issued() -> None:
    client = ScriptedChatClient(["x"], service_threads=True)
    agent = ChatAgent(client)
    thread = agent.get_new_thread(service_thread_id="conv_404")
    with pytest.raises(ClientError, match="conversation 'conv_404' not found"):
        await agent.run("hi", thread=thread)


async def test_whole_messages_are_returned_as_given() -> None:
    reply = ChatMessage(Role.ASSISTANT, "scripted", author_name="bot", message_id="msg_fixed")
    response = await ChatAgent(ScriptedChatClient([reply])).run("hi")
    assert response.messages == (reply,)
