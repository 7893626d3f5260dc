from __future__ import annotations

from collections.abc import Sequence

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    FunctionCallContent,
    FunctionManager,
    GroupChat,
    GroupChatError,
    RoundRobinManager,
    ScriptedChatClient,
    UsageError,
    skip_tool_messages,
    tool,
)
from threadline.types.contents import FunctionResultContent

from .conftest import cast, shape, thread_shape

SCRIPTS = {
    "writer": ["Slogan: bark lamps glow.", "Slogan v2: glow from the forest."],
    "editor": ["Too plain.", "Better."],
    "critic": ["Needs warmth.", "Ship it."],
}


async def test_round_robin_transcript_and_what_each_agent_was_sent() -> None:
    agents, clients = cast(SCRIPTS)
    chat = GroupChat(agents, max_rounds=6)
    response = await chat.run("Write a slogan for bark lamps.")
    assert response.stop_reason == "max_rounds"
    assert response.next_speaker == "writer"
    assert shape(response.messages) == [
        ("assistant", "writer", "Slogan: bark lamps glow."),
        ("assistant", "editor", "Too plain."),
        ("assistant", "critic", "Needs warmth."),
        ("assistant", "writer", "Slogan v2: glow from the forest."),
        ("assistant", "editor", "Better."),
        ("assistant", "critic", "Ship it."),
    ]
    transcript = await response.thread.messages()
    assert shape(transcript) == [
        ("user", None, "Write a slogan for bark lamps."),
        *shape(response.messages),
    ]
    # The editor's second request: everything so far, others' messages as named user messages.
    assert shape(clients["editor"].calls[1].messages) == [
        ("system", None, "You are editor."),
        ("user", None, "Write a slogan for bark lamps."),
        ("user", "writer", "Slogan: bark lamps glow."),
        ("assistant", "editor", "Too plain."),
        ("user", "critic", "Needs warmth."),
        ("user", "writer", "Slogan v2: glow from the forest."),
    ]
    # Each participant's own thread is the complete record of what it saw.
    assert await thread_shape(response.thread.participants["critic"]) == [
        ("user", None, "Write a slogan for bark lamps."),
        ("user", "writer", "Slogan: bark lamps glow."),
        ("user", "editor", "Too plain."),
        ("assistant", "critic", "Needs warmth."),
        ("user", "writer", "Slogan v2: glow from the forest."),
        ("user", "editor", "Better."),
        ("assistant", "critic", "Ship it."),
    ]
    for client in clients.values():
        client.assert_all_replies_used()


async def test_tool_calls_and_results_reach_the_other_participants_as_text() -> None:
    @tool
    def stock(item: str) -> int:
        """How many are in stock."""
        return 7

    researcher_client = ScriptedChatClient(
        [[FunctionCallContent(call_id="c1", name="stock", arguments='{"item": "lamp"}')], "7 left."]
    )
    seller_client = ScriptedChatClient(["Then sell all 7."])
    researcher = ChatAgent(researcher_client, name="researcher", tools=[stock])
    seller = ChatAgent(seller_client, name="seller")
    chat = GroupChat([researcher, seller], max_rounds=2)
    response = await chat.run("How many lamps?")
    sent = seller_client.calls[0].messages
    assert shape(sent) == [
        ("user", None, "How many lamps?"),
        ("user", "researcher", '[called tool stock({"item": "lamp"})]'),
        ("user", "researcher", "[tool stock returned 7]"),
        ("user", "researcher", "7 left."),
    ]
    # Never a function call or result of another agent: the request stays well-formed.
    assert not any(
        type(c) in (FunctionCallContent, FunctionResultContent) for m in sent for c in m.contents
    )
    # The researcher's own thread keeps its real call and result.
    own = await response.thread.participants["researcher"].message_store.list_messages()  # type: ignore[union-attr]
    assert [m.role.value for m in own] == ["user", "assistant", "tool", "assistant", "user"]

    # A per-participant filter may hide tool traffic.
    researcher_client.add_replies(
        [FunctionCallContent(call_id="c2", name="stock", arguments='{"item": "bulb"}')], "7 bulbs."
    )
    seller_client.add_replies("Fine.")
    quiet = GroupChat([researcher, seller], max_rounds=2, filters={"seller": skip_tool_messages})
    await quiet.run("And bulbs?")
    assert shape(seller_client.calls[1].messages) == [
        ("user", None, "And bulbs?"),
        ("user", "researcher", "7 bulbs."),
    ]


async def test_a_speaker_chosen_twice_in_a_row_gets_its_whole_history() -> None:
    agents, clients = cast({"solo": ["First.", "Second."], "other": []})
    order = iter(["solo", "solo", None])
    chat = GroupChat(agents, manager=FunctionManager(lambda transcript: next(order)))
    response = await chat.run("Go.")
    assert response.stop_reason == "manager"
    assert shape(clients["solo"].calls[1].messages) == [
        ("system", None, "You are solo."),
        ("user", None, "Go."),
        ("assistant", "solo", "First."),
    ]
    assert await thread_shape(response.thread.participants["other"]) == [
        ("user", None, "Go."),
        ("user", "solo", "First."),
        ("user", "solo", "Second."),
    ]


async def test_propagation_costs_no_model_call_and_one_append_per_participant() -> None:
    from threadline import ChatMessageList

    appends: dict[int, int] = {}

    class CountingList(ChatMessageList):
        async def add_messages(
            self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
        ) -> int:
            if messages:
                appends[id(self)] = appends.get(id(self), 0) + 1
            return await super().add_messages(messages, expected_version=expected_version)

    clients = {n: ScriptedChatClient(r) for n, r in SCRIPTS.items()}
    agents = [
        ChatAgent(clients[n], name=n, chat_message_store_factory=CountingList) for n in SCRIPTS
    ]
    chat = GroupChat(agents, max_rounds=6)
    response = await chat.run("Go.")
    # 7 messages (the user's and 6 turns); each reached each thread in exactly one append.
    for name, thread in response.thread.participants.items():
        assert appends[id(thread.message_store)] == 7, name
    assert sum(len(c.calls) for c in clients.values()) == 6  # one model call per turn, no more


async def test_termination_callable_and_manager_stop() -> None:
    agents, _ = cast(SCRIPTS)
    chat = GroupChat(agents, max_rounds=6, termination=lambda t: t[-1].text.startswith("Needs"))
    response = await chat.run("Go.")
    assert response.stop_reason == "termination"
    assert [m.author_name for m in response.messages] == ["writer", "editor", "critic"]
    assert response.next_speaker is None


async def test_max_rounds_counts_per_run_and_is_finite_by_default() -> None:
    client = ScriptedChatClient(["x"] * 30)
    chat = GroupChat(
        [ChatAgent(client, name="a"), ChatAgent(ScriptedChatClient([]), name="b")],
        manager=FunctionManager(lambda t: "a"),
    )
    first = await chat.run("Go.")
    assert (first.stop_reason, len(first.messages)) == ("max_rounds", 10)
    second = await chat.run(thread=first.thread, max_rounds=3)
    assert len(second.messages) == 3 and second.thread.rounds_used == 13
    with pytest.raises(ValueError, match="max_rounds"):
        await chat.run(thread=first.thread, max_rounds=0)
    with pytest.raises(ValueError, match="max_rounds"):
        GroupChat([ChatAgent(client, name="a")], max_rounds=-1)


async def test_a_manager_naming_a_stranger_is_a_clear_error() -> None:
    agents, clients = cast({"a": [], "b": []})
    chat = GroupChat(agents, manager=FunctionManager(lambda t: "zed"))
    with pytest.raises(GroupChatError, match="'zed'.*not a participant"):
        await chat.run("Go.")
    assert all(c.calls == [] for c in clients.values())


async def test_stream_yields_each_agents_output_with_its_name() -> None:
    agents, _ = cast(SCRIPTS)
    chat = GroupChat(agents, max_rounds=3)
    thread = chat.get_new_thread()
    updates = [u async for u in chat.run_stream("Go.", thread=thread)]
    text: dict[str, str] = {}
    for update in updates:
        assert update.author_name is not None
        text[update.author_name] = text.get(update.author_name, "") + update.text
    assert text == {
        "writer": "Slogan: bark lamps glow.",
        "editor": "Too plain.",
        "critic": "Needs warmth.",
    }
    assert [m.author_name for m in await thread.messages()] == [None, "writer", "editor", "critic"]
    assert thread.next_speaker == "writer"


async def test_fork_branches_every_participant() -> None:
    agents, clients = cast(SCRIPTS)
    chat = GroupChat(agents, max_rounds=3)
    response = await chat.run("Go.")
    branch = await response.thread.fork()
    await chat.run(thread=branch, max_rounds=1)
    assert len(await response.thread.messages()) == 4
    assert len(await branch.messages()) == 5
    assert len(await response.thread.participants["editor"].message_store.list_messages()) == 4  # type: ignore[union-attr]
    assert len(await branch.participants["editor"].message_store.list_messages()) == 5  # type: ignore[union-attr]
    assert clients["writer"].remaining == 0


def test_bad_participants_are_refused() -> None:
    client = ScriptedChatClient([])
    with pytest.raises(UsageError, match="needs a name"):
        GroupChat([ChatAgent(client)])
    with pytest.raises(UsageError, match="needs a name"):
        GroupChat([ChatAgent(client, name="two words")])
    with pytest.raises(UsageError, match="needs a name"):
        GroupChat([ChatAgent(client, name="café")])  # tool names must be ASCII
    with pytest.raises(UsageError, match="named 'a'"):
        GroupChat([ChatAgent(client, name="a"), ChatAgent(client, name="a")])
    with pytest.raises(UsageError, match="at least one"):
        GroupChat([])
    with pytest.raises(UsageError, match="not participants"):
        GroupChat([ChatAgent(client, name="a")], filters={"b": skip_tool_messages})


def test_a_service_participant_that_cannot_take_messages_is_refused() -> None:
    class NoAddClient:
        """A service-managed client without SupportsAddMessages (delegates everything else)."""

        def __init__(self) -> None:
            self._inner = ScriptedChatClient([], service_threads=True)
            self.get_response = self._inner.get_response
            self.get_streaming_response = self._inner.get_streaming_response

        @property
        def service_name(self) -> str:
            return "noadd"

        @property
        def stores_history(self) -> bool:
            return True

    remote = ChatAgent(NoAddClient(), name="remote")
    with pytest.raises(UsageError, match="participant 'remote'.*SupportsAddMessages"):
        GroupChat([remote, ChatAgent(ScriptedChatClient([]), name="local")])


async def test_thread_of_another_runner_is_refused() -> None:
    agents, _ = cast({"a": [], "b": []})
    other, _ = cast({"x": [], "y": []})
    thread = GroupChat(other).get_new_thread()
    with pytest.raises(UsageError, match="belongs to"):
        await GroupChat(agents).run("hi", thread=thread)
    with pytest.raises(UsageError, match="MultiAgentThread"):
        await GroupChat(agents).run("hi", thread=agents[0].get_new_thread())  # type: ignore[arg-type]


async def test_round_robin_starts_with_the_first_participant() -> None:
    from threadline import SpeakerSelection

    manager = RoundRobinManager()
    sel = SpeakerSelection(transcript=[], participants=["a", "b"], last_speaker=None, state={})
    assert await manager.select(sel) == "a"


async def test_a_failed_turn_leaves_the_chat_to_be_retried_with_the_same_speaker() -> None:
    from threadline import ClientError

    agents, clients = cast({"a": ["a1", "a2"], "b": [ClientError("model down"), "b1"]})
    chat = GroupChat(agents, max_rounds=3)
    thread = chat.get_new_thread()
    with pytest.raises(ClientError, match="model down"):
        await chat.run("Go.", thread=thread)
    assert thread.next_speaker == "b" and thread.rounds_used == 1
    assert [m.text for m in await thread.messages()] == ["Go.", "a1"]
    response = await chat.run(thread=thread, max_rounds=2)
    assert [(m.author_name, m.text) for m in response.messages] == [("b", "b1"), ("a", "a2")]
    assert await thread_shape(thread.participants["b"]) == [
        ("user", None, "Go."),
        ("user", "a", "a1"),
        ("assistant", "b", "b1"),
        ("user", "a", "a2"),
    ]
    assert len(clients["b"].calls) == 2


async def test_tool_results_carry_their_authors_name_in_the_transcript() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    client = ScriptedChatClient([[FunctionCallContent(call_id="p", name="ping")], "done"])
    chat = GroupChat([ChatAgent(client, name="a", tools=[ping])], max_rounds=1)
    response = await chat.run("Go.")
    assert [(m.role.value, m.author_name) for m in response.messages] == [
        ("assistant", "a"),
        ("tool", "a"),
        ("assistant", "a"),
    ]
