from __future__ import annotations

import json

import pytest

from threadline import (
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    GroupChatError,
    Handoff,
    UsageError,
)

from .conftest import cast, shape, thread_shape


def transfer(to: str, call_id: str) -> list[FunctionCallContent]:
    return [FunctionCallContent(call_id=call_id, name=f"transfer_to_{to}", arguments="{}")]


def well_formed(messages: list[ChatMessage]) -> bool:
    calls = {c.call_id for m in messages for c in m.contents if type(c) is FunctionCallContent}
    results = {c.call_id for m in messages for c in m.contents if type(c) is FunctionResultContent}
    return calls == results


SCRIPTS = {
    "triage": [transfer("billing", "h1")],
    "billing": ["Your invoice is paid.", "Refund issued."],
    "support": [],
}
UNINTERRUPTED = [
    ("user", None, "Is my invoice paid?"),
    ("assistant", "triage", ""),
    ("tool", "triage", ""),
    ("assistant", "billing", "Your invoice is paid."),
]


async def test_a_handoff_is_a_call_and_result_and_the_target_answers_the_same_turn() -> None:
    agents, clients = cast(SCRIPTS)
    handoff = Handoff(agents, start="triage")
    response = await handoff.run("Is my invoice paid?")
    assert response.stop_reason == "done" and response.last_text == "Your invoice is paid."
    assert shape(await response.thread.messages()) == UNINTERRUPTED
    # Every agent is offered transfers to the others (deferred tools), nothing else.
    offered = [t.name for t in clients["triage"].calls[0].options.get("tools", [])]
    assert offered == ["transfer_to_billing", "transfer_to_support"]
    assert all(t.is_deferred for t in clients["triage"].calls[0].options.get("tools", []))
    # The triage thread holds the call and its result: well-formed for any API.
    triage = response.thread.participants["triage"].message_store
    assert triage is not None and well_formed(await triage.list_messages())
    assert shape(clients["billing"].calls[0].messages) == [
        ("system", None, "You are billing."),
        ("user", None, "Is my invoice paid?"),
        ("user", "triage", "[called tool transfer_to_billing({})]"),
        ("user", "triage", '[tool transfer_to_billing returned "Transferred to billing."]'),
    ]
    # The next user turn continues with the agent in control, which sees only what is new.
    again = await handoff.run("Then refund me.", thread=response.thread)
    assert again.text == "Refund issued."
    assert shape(clients["billing"].calls[1].messages)[-3:] == [
        ("user", "triage", '[tool transfer_to_billing returned "Transferred to billing."]'),
        ("assistant", "billing", "Your invoice is paid."),
        ("user", None, "Then refund me."),
    ]
    assert len(clients["triage"].calls) == 1


async def test_history_text_and_callable_choose_what_the_next_agent_sees() -> None:
    agents, clients = cast(SCRIPTS)
    await Handoff(agents, history="text").run("Is my invoice paid?")
    assert shape(clients["billing"].calls[0].messages)[1:] == [
        ("user", None, "Is my invoice paid?")
    ]

    agents, clients = cast(SCRIPTS)
    await Handoff(agents, history=lambda shown: shown[-1:]).run("Is my invoice paid?")
    assert shape(clients["billing"].calls[0].messages)[1:] == [
        ("user", "triage", '[tool transfer_to_billing returned "Transferred to billing."]')
    ]


async def test_graph_limits_the_transfer_tools() -> None:
    agents, clients = cast(SCRIPTS)
    await Handoff(agents, graph={"triage": ["billing"], "billing": []}).run("Paid?")
    assert [t.name for t in clients["triage"].calls[0].options.get("tools", [])] == [
        "transfer_to_billing"
    ]
    assert "tools" not in clients["billing"].calls[0].options


async def test_resuming_a_handoff_never_duplicates_history() -> None:
    agents, clients = cast(SCRIPTS)
    first = await Handoff(agents).run("Is my invoice paid?", max_rounds=1)
    assert first.stop_reason == "max_rounds" and first.next_speaker == "billing"
    state = json.loads(json.dumps(await first.thread.serialize()))
    fresh, _ = cast(SCRIPTS, clients=clients)
    handoff = Handoff(fresh)
    thread = await handoff.deserialize_thread(state)
    rest = await handoff.run(thread=thread)
    assert rest.text == "Your invoice is paid."
    assert shape(await thread.messages()) == UNINTERRUPTED
    await handoff.run("Then refund me.", thread=thread)
    billing = await thread_shape(thread.participants["billing"])
    assert [t for _, _, t in billing].count("Is my invoice paid?") == 1
    assert billing[-1] == ("assistant", "billing", "Refund issued.")
    # Restoring the same state twice never duplicates anything either.
    again = await handoff.deserialize_thread(state)
    assert shape(await again.messages()) == shape(await first.thread.messages())


async def test_a_bounce_loop_stops_with_a_clear_error_not_a_recursion_limit() -> None:
    agents, clients = cast(
        {
            "a": [transfer("b", f"a{i}") for i in range(5)],
            "b": [transfer("a", f"b{i}") for i in range(5)],
        }
    )
    handoff = Handoff(agents, max_bounces=2)
    thread = handoff.get_new_thread()
    with pytest.raises(GroupChatError, match="'b' and 'a' handed the conversation back and forth"):
        await handoff.run("Who handles this?", thread=thread)
    assert len(clients["a"].calls) + len(clients["b"].calls) == 4
    for participant in thread.participants.values():
        assert participant.message_store is not None
        assert well_formed(await participant.message_store.list_messages())
    assert thread.next_speaker is None and thread.last_speaker == "b"


async def test_max_handoffs_bounds_a_chain() -> None:
    agents, _ = cast(
        {"a": [transfer("b", "1")], "b": [transfer("c", "2")], "c": [transfer("a", "3")]}
    )
    with pytest.raises(GroupChatError, match="max_handoffs=2"):
        await Handoff(agents, max_handoffs=2).run("Go.")


async def test_a_call_the_handoff_cannot_answer_is_answered_and_reported() -> None:
    from threadline import ChatAgent, FunctionTool, ScriptedChatClient

    ask = FunctionTool(name="ask_user", description="Ask.", parameters={"type": "object"})
    client = ScriptedChatClient([[FunctionCallContent(call_id="x", name="ask_user")]])
    agents = [ChatAgent(client, name="a", tools=[ask]), ChatAgent(ScriptedChatClient([]), name="b")]
    handoff = Handoff(agents)
    thread = handoff.get_new_thread()
    with pytest.raises(GroupChatError, match="'ask_user' unanswered"):
        await handoff.run("Hi.", thread=thread)
    store = thread.participants["a"].message_store
    assert store is not None and well_formed(await store.list_messages())


def test_bad_configuration_is_refused() -> None:
    agents, _ = cast({"a": [], "b": []})
    with pytest.raises(UsageError, match="start 'zed'"):
        Handoff(agents, start="zed")
    with pytest.raises(UsageError, match="graph names"):
        Handoff(agents, graph={"a": ["zed"]})
    with pytest.raises(UsageError, match="history"):
        Handoff(agents, history="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bounces"):
        Handoff(agents, max_bounces=-1)


async def test_stream_shows_the_handoff_and_the_answer_with_their_authors() -> None:
    agents, _ = cast(SCRIPTS)
    handoff = Handoff(agents)
    thread = handoff.get_new_thread()
    updates = [u async for u in handoff.run_stream("Is my invoice paid?", thread=thread)]
    assert [u.author_name for u in updates if u.contents][0] == "triage"
    assert "".join(u.text for u in updates if u.author_name == "billing") == "Your invoice is paid."
    assert shape(await thread.messages()) == UNINTERRUPTED
    assert thread.last_speaker == "billing" and thread.next_speaker is None


async def test_an_agent_taking_control_back_never_sees_its_own_messages_again() -> None:
    from threadline import ChatAgent, ScriptedChatClient, tool

    @tool
    def lookup() -> str:
        """Look it up."""
        return "found"

    a_client = ScriptedChatClient(
        [[FunctionCallContent(call_id="t", name="lookup")], transfer("b", "h1"), "a again."]
    )
    b_client = ScriptedChatClient([transfer("a", "h2")])
    agents = [ChatAgent(a_client, name="a", tools=[lookup]), ChatAgent(b_client, name="b")]
    response = await Handoff(agents).run("Hi.")
    assert response.last_text == "a again."
    own = response.thread.participants["a"].message_store
    assert own is not None
    stored = await own.list_messages()
    assert well_formed(stored)
    ids = [m.message_id for m in stored]
    assert len(ids) == len(set(ids))
    # What a got when it took control back: only b's handoff, as text.
    assert shape(a_client.calls[2].messages)[-2:] == [
        ("user", "b", "[called tool transfer_to_a({})]"),
        ("user", "b", '[tool transfer_to_a returned "Transferred to a."]'),
    ]
    assert not any(
        t == '[tool lookup returned "found"]' for _, _, t in shape(a_client.calls[2].messages)
    )


CHAIN = {"a": [transfer("b", "1")], "b": [transfer("c", "2")], "c": ["c answers."]}


@pytest.mark.parametrize("k", [1, 2])
async def test_a_handoff_chain_stopped_at_any_turn_resumes_identically(k: int) -> None:
    agents, clients = cast(CHAIN)
    whole = await Handoff(agents).run("Go.")
    expected = shape(await whole.thread.messages())
    expected_calls = {n: [shape(c.messages) for c in cl.calls] for n, cl in clients.items()}

    agents, clients = cast(CHAIN)
    first = await Handoff(agents).run("Go.", max_rounds=k)
    state = json.loads(json.dumps(await first.thread.serialize()))
    fresh, _ = cast(CHAIN, clients=clients)
    handoff = Handoff(fresh)
    thread = await handoff.deserialize_thread(state)
    await handoff.run(thread=thread)
    assert shape(await thread.messages()) == expected
    assert {n: [shape(c.messages) for c in cl.calls] for n, cl in clients.items()} == expected_calls


async def test_new_input_after_a_stopped_handoff_goes_to_the_agent_handed_to() -> None:
    agents, clients = cast(SCRIPTS)
    handoff = Handoff(agents)
    first = await handoff.run("Is my invoice paid?", max_rounds=1)
    assert first.next_speaker == "billing"
    response = await handoff.run("Also, hello.", thread=first.thread)
    assert response.text == "Your invoice is paid."
    assert [t for _, _, t in shape(clients["billing"].calls[0].messages)][-1] == "Also, hello."
    assert len(clients["triage"].calls) == 1
