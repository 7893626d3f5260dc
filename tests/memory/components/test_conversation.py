"""``ConversationMemory``: turns indexed with context, recalled from the user's other threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from threadline import AgentThread, ChatAgent, ChatMessage, Role, ScriptedChatClient, UsageError
from threadline.memory.conversation import ConversationMemory
from threadline.memory.records import MemoryScope
from threadline.memory.store import MemoryStore

WEEK_AGO = datetime(2026, 11, 15, 9, 30, tzinfo=UTC)
NOW = WEEK_AGO + timedelta(days=7)


def system_text(client: ScriptedChatClient, call: int = -1) -> str:
    messages = client.calls[call].messages
    return messages[0].text if messages and messages[0].role == Role.SYSTEM else ""


async def test_a_thread_without_user_is_refused_before_any_model_call(store: MemoryStore) -> None:
    client = ScriptedChatClient(["never sent"])
    agent = ChatAgent(client, context_providers=ConversationMemory(store))
    with pytest.raises(UsageError, match=r"get_new_thread\(user_id=\.\.\.\)"):
        await agent.run("hello", thread=agent.get_new_thread())
    assert client.calls == []


async def test_a_new_thread_gets_the_relevant_past_turn_with_its_date(store: MemoryStore) -> None:
    clock = [WEEK_AGO]
    memory = ConversationMemory(store, clock=lambda: clock[0])
    client = ScriptedChatClient(
        ["Congratulations to Clara!", "Noted.", "It is in Lisbon, on June 12th."]
    )
    agent = ChatAgent(client, "Be brief.", context_providers=memory)
    first = agent.get_new_thread(user_id="alice")
    await agent.run("My sister Clara is getting married in Lisbon in June.", thread=first)
    await agent.run("Also, I bought a red bicycle.", thread=first)

    clock[0] = NOW
    second = agent.get_new_thread(user_id="alice")
    await agent.run("Where is my sister's wedding again?", thread=second)

    system = system_text(client)
    assert system.startswith("Be brief.")
    assert "married in Lisbon" in system
    assert "2026-11-15 (Sunday)" in system
    assert first.id in system
    # the most relevant comes first; the current thread's own turns are never repeated
    assert system.index("Lisbon") < system.index("bicycle") if "bicycle" in system else True
    assert "Where is my sister's wedding" not in system


async def test_nothing_is_read_across_users(store: MemoryStore) -> None:
    memory = ConversationMemory(store)
    client = ScriptedChatClient(["ok", "I don't know."])
    agent = ChatAgent(client, context_providers=memory)
    await agent.run("My locker code is 4471.", thread=agent.get_new_thread(user_id="alice"))
    await agent.run("What is my locker code?", thread=agent.get_new_thread(user_id="bob"))
    assert "4471" not in system_text(client)
    assert all("4471" not in h.text for h in await memory.recall("locker code", user_id="bob"))
    assert [h.thread_id for h in await memory.recall("locker code", user_id="alice")]


async def test_ingest_keeps_ids_in_order_and_context_makes_short_turns_findable(
    store: MemoryStore,
) -> None:
    memory = ConversationMemory(store)
    messages = [
        ChatMessage(Role.USER, "Did you see the Vermeer exhibition in Amsterdam?", message_id="m1"),
        ChatMessage(Role.ASSISTANT, "Yes, that was great!", message_id="m2"),
        ChatMessage(Role.USER, "The weather is nice today.", message_id="m3"),
        ChatMessage(Role.SYSTEM, "not indexed", message_id="m4"),
    ]
    added = await memory.ingest(
        messages, user_id="alice", thread_id="t1", occurred_at=datetime(2023, 5, 20, 14, 0)
    )
    assert added == 3
    hits = await memory.recall("Vermeer exhibition Amsterdam", user_id="alice", limit=5)
    assert hits, "the exhibition turn is findable"
    by_last = {h.message_ids[-1]: h for h in hits}
    # the assistant's "Yes, that was great!" is found by what it answered, and names both messages
    assert by_last["m2"].message_ids == ("m1", "m2")
    assert by_last["m2"].thread_id == "t1"
    assert by_last["m2"].occurred_at == datetime(2023, 5, 20, 14, 0, tzinfo=UTC)  # naive = UTC
    assert "2023-05-20" in by_last["m2"].text
    assert hits[0].score >= hits[-1].score
    # importing the same history again adds nothing
    assert await memory.ingest(messages, user_id="alice", thread_id="t1") == 0


async def test_a_restored_thread_does_not_index_its_messages_twice(store: MemoryStore) -> None:
    memory = ConversationMemory(store)
    client = ScriptedChatClient(["Noted.", "Sure."])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("I play the cello on Tuesdays.", thread=thread)
    state = await thread.serialize()

    restored = await agent.deserialize_thread(state)
    assert restored.user_id == "alice"
    await agent.run("And piano on Fridays.", thread=restored)
    turns = await store.list(scope=MemoryScope(user_id="alice"), kinds=["turn"])
    texts = sorted(r.message_ids[-1] for r in turns)
    assert len(texts) == len(set(texts)) == 4
    assert "cello" in turns[-1].text or any("cello" in r.text for r in turns)


async def test_checkpoint_stores_one_extractive_summary_per_thread(store: MemoryStore) -> None:
    memory = ConversationMemory(store)
    client = ScriptedChatClient(["Lovely.", "Good luck."])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("We are planning a trip to Kyoto in April. Cherry blossoms!", thread=thread)
    await thread.serialize()
    await agent.run("My manager approved two weeks of leave for the trip.", thread=thread)
    await thread.end()
    await thread.end()  # nothing new: no second summary
    scope = MemoryScope(user_id="alice")
    summaries = await store.list(scope=scope, kinds=["summary"])
    assert len(summaries) == 1
    assert "Kyoto" in summaries[0].text and "leave" in summaries[0].text
    assert summaries[0].thread_id == thread.id
    user_ids = [m.message_id for m in (await thread.message_store.list_messages())[::2]]  # type: ignore[union-attr]
    assert set(summaries[0].message_ids) <= set(user_ids)


async def test_a_configured_summarizer_writes_the_summary(store: MemoryStore) -> None:
    summarizer = ScriptedChatClient(["Alice plans a Kyoto trip in April."])
    memory = ConversationMemory(store, summarizer=summarizer)
    agent = ChatAgent(ScriptedChatClient(["Lovely."]), context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("We are planning a trip to Kyoto in April.", thread=thread)
    await thread.end()
    summaries = await store.list(scope=MemoryScope(user_id="alice"), kinds=["summary"])
    assert [s.text.split(": ", 1)[1] for s in summaries] == ["Alice plans a Kyoto trip in April."]
    assert "Kyoto" in summarizer.calls[0].messages[-1].text


async def test_a_rambling_summarizer_is_cut_to_a_bounded_summary(store: MemoryStore) -> None:
    """A summarizer answering 40,000 characters (over the stores' 32,000 limit) must not make
    ``serialize()``/``end()`` fail, nor leave the thread unsummarized."""
    rambling = "Alice plans a Kyoto trip in April. " + "She also said more things. " * 1500
    assert len(rambling) > 40_000
    summarizer = ScriptedChatClient([rambling, rambling])
    memory = ConversationMemory(store, summarizer=summarizer)
    agent = ChatAgent(ScriptedChatClient(["Lovely.", "Noted."]), context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("We are planning a trip to Kyoto in April.", thread=thread)
    await agent.deserialize_thread(await thread.serialize())
    await agent.run("We will stay for a week.", thread=thread)
    await thread.end()
    [summary] = await store.list(scope=MemoryScope(user_id="alice"), kinds=["summary"])
    assert summary.text.split(": ", 1)[1].startswith("Alice plans a Kyoto trip in April.")
    assert len(summary.text) <= 2_100
    assert len(summarizer.calls) == 2


async def test_reads_can_be_narrowed_to_the_agent_but_never_widened_past_the_user(
    store: MemoryStore,
) -> None:
    cook = ConversationMemory(store, agent_id="cook")
    coach = ConversationMemory(store, agent_id="coach", read_scope="agent")
    everyone = ConversationMemory(store)
    msgs = [ChatMessage(Role.USER, "I ran a marathon in Berlin.")]
    await cook.ingest(msgs, user_id="alice", thread_id="t-cook")
    assert await coach.recall("marathon Berlin", user_id="alice") == []
    assert len(await everyone.recall("marathon Berlin", user_id="alice")) == 1
    assert await everyone.recall("marathon Berlin", user_id="bob") == []


async def test_unbound_threads_and_failed_runs_index_the_input(store: MemoryStore) -> None:
    memory = ConversationMemory(store)
    client = ScriptedChatClient([RuntimeError("model down")])
    agent = ChatAgent(client, context_providers=memory)
    thread = AgentThread(user_id="alice")
    with pytest.raises(RuntimeError):
        await agent.run("Remember the blue door on Elm street.", thread=thread)
    hits = await memory.recall("blue door Elm", user_id="alice")
    assert [h.record.metadata["role"] for h in hits] == ["user"]


async def test_per_thread_state_stays_small_on_long_threads(store: MemoryStore) -> None:
    memory = ConversationMemory(store)
    thread = AgentThread(user_id="alice")
    thread.context_state[memory.state_key] = {}
    messages = [ChatMessage(Role.USER, f"note number {i} about topic {i}") for i in range(600)]
    await memory.invoked(messages, [], None, thread=thread)
    state = memory.state(thread)
    assert len(state["indexed"]) == 500 and state["count"] == 600
    await memory.invoked(messages[-3:], [], None, thread=thread)  # a replay: nothing new
    assert len(await store.list(scope=MemoryScope(user_id="alice"), kinds=["turn"])) == 600
