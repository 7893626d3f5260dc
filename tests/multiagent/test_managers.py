from __future__ import annotations

import pytest

from threadline import AgentManager, ChatAgent, GroupChat, GroupChatError, ScriptedChatClient

from .conftest import cast, shape


async def test_an_agent_manager_reads_the_transcript_and_picks_the_speaker() -> None:
    agents, clients = cast({"writer": ["A slogan."], "critic": ["Fine."]})
    model = ScriptedChatClient(["critic", "writer.", "DONE"])
    chat = GroupChat(agents, manager=AgentManager(ChatAgent(model, name="boss")))
    response = await chat.run("Go.")
    assert [m.author_name for m in response.messages] == ["critic", "writer"]
    assert response.stop_reason == "manager"
    # The manager saw the transcript with authors, and the participants' names.
    prompt = model.calls[2].messages[-1].text
    assert "Participants: writer, critic." in prompt
    assert "critic: Fine.\nwriter: A slogan." in prompt
    # Nothing of the manager's exchange reached the participants.
    assert shape(clients["writer"].calls[0].messages)[1:] == [
        ("user", None, "Go."),
        ("user", "critic", "Fine."),
    ]


async def test_an_unknown_name_is_retried_once_then_a_clear_error() -> None:
    agents, clients = cast({"writer": ["A slogan."], "critic": []})
    model = ScriptedChatClient(["Shakespeare", "writer", "nobody", "also nobody"])
    chat = GroupChat(agents, manager=AgentManager(ChatAgent(model, name="boss")))
    thread = chat.get_new_thread()
    with pytest.raises(GroupChatError, match="named 'also nobody' twice"):
        await chat.run("Go.", thread=thread)
    assert "'Shakespeare' is not a participant" in model.calls[1].messages[-1].text
    assert [m.author_name for m in await thread.messages()] == [None, "writer"]
    assert clients["critic"].calls == []
