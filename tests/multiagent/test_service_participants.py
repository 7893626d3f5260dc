"""A group chat whose participants live behind threadline servers (Responses, store=True).

Each remote participant is an ``OpenAIResponsesClient`` agent talking over loopback HTTP to a real
threadline server (the ASGI app under uvicorn, from tests/hosting), whose own model is scripted.
What the server's model was sent proves the other participants' messages reached the service
conversation without a model call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, GroupChat, OpenAIResponsesClient, ScriptedChatClient
from threadline.hosting import ServerConfig


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[dict[str, tuple[str, ScriptedChatClient]]]:
    started: dict[str, tuple[str, ScriptedChatClient]] = {}
    handles: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    for name in ("north", "south"):
        model = ScriptedChatClient([f"{name} says hi.", f"{name} again."])
        config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / f"{name}.db"))
        server, task, url = await start_server(ChatAgent(model, f"You are {name}."), config)
        handles.append((server, task))
        started[name] = (url, model)
    try:
        yield started
    finally:
        for server, task in handles:
            server.should_exit = True
            await task


async def test_messages_reach_participants_behind_a_server(
    remote: dict[str, tuple[str, ScriptedChatClient]],
) -> None:
    clients = {
        name: OpenAIResponsesClient("threadline", base_url=url, api_key="key-alice", max_retries=0)
        for name, (url, _) in remote.items()
    }
    try:
        await _chat(clients, remote)
    finally:
        for client in clients.values():
            await client.aclose()


async def _chat(
    clients: dict[str, OpenAIResponsesClient], remote: dict[str, tuple[str, ScriptedChatClient]]
) -> None:
    agents = [ChatAgent(client, name=name) for name, client in clients.items()]
    local_model = ScriptedChatClient(["local agrees."])
    agents.append(ChatAgent(local_model, name="local"))
    chat = GroupChat(agents, max_rounds=4)
    response = await chat.run("Hello all.")
    assert [(m.author_name, m.text) for m in response.messages] == [
        ("north", "north says hi."),
        ("south", "south says hi."),
        ("local", "local agrees."),
        ("north", "north again."),
    ]
    north_model, south_model = remote["north"][1], remote["south"][1]
    # South's service conversation held the user's and north's messages before south spoke.
    assert [m.text for m in south_model.calls[0].messages if m.role.value != "system"] == [
        "Hello all.",
        "north says hi.",
    ]
    # North, chosen again, got everything since: south's and local's messages, one model call each.
    assert [m.text for m in north_model.calls[1].messages if m.role.value != "system"] == [
        "Hello all.",
        "north says hi.",
        "south says hi.",
        "local agrees.",
    ]
    assert len(north_model.calls) == 2 and len(south_model.calls) == 1
    for name in ("north", "south"):
        assert str(response.thread.participants[name].service_thread_id).startswith("conv")

    # The chat resumes from its serialized state: service threads travel as their ids.
    state = await response.thread.serialize()
    thread = await chat.deserialize_thread(state)
    assert thread.next_speaker == "south"
    again = await chat.run(thread=thread, max_rounds=1)
    assert [m.text for m in again.messages] == ["south again."]


async def test_an_assistants_participant_gets_the_others_messages(
    remote: dict[str, tuple[str, ScriptedChatClient]],
) -> None:
    from threadline import OpenAIAssistantsClient

    url, model = remote["north"]
    client = OpenAIAssistantsClient("threadline", base_url=url, api_key="key-alice", max_retries=0)
    try:
        agents = [
            ChatAgent(ScriptedChatClient(["local first."]), name="local"),
            ChatAgent(client, name="north"),
        ]
        response = await GroupChat(agents, max_rounds=2).run("Hello.")
        assert [m.text for m in response.messages] == ["local first.", "north says hi."]
        assert [m.text for m in model.calls[0].messages if m.role.value != "system"] == [
            "Hello.",
            "local first.",
        ]
    finally:
        await client.aclose()


async def test_a_responses_thread_that_cannot_take_messages_is_refused() -> None:
    from threadline import UsageError

    client = OpenAIResponsesClient("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    try:
        with pytest.raises(UsageError, match="use_conversations=True"):
            await client.add_conversation_messages("resp_123", [])
        local = OpenAIResponsesClient(
            "m", store=False, base_url="http://127.0.0.1:9/v1", api_key="k"
        )
        with pytest.raises(UsageError, match="store=False"):
            await local.add_conversation_messages(None, [])
        await local.aclose()
    finally:
        await client.aclose()
