"""ChatAgent with compaction, on real SQLite threads: stored, linked, atomic, never lossy.

The model is a ScriptedChatClient (the embedded model's own tests are in test_local_model.py):
what is asserted here is what the agent sends and stores, which a script makes exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from threadline import (
    ChatAgent,
    ChatMessage,
    ClientError,
    Compaction,
    CompactionContent,
    ConcurrentThreadUpdateError,
    ErrorContent,
    FunctionTool,
    Role,
    ScriptedChatClient,
    SQLiteChatMessageStore,
    UsageError,
    compacted_view,
)
from threadline.compaction import summary_mark
from threadline.history import estimate_tokens
from threadline.threads.thread import AgentThread
from threadline.types.contents import FunctionCallContent, FunctionResultContent

FILLER = "Tell me more about the history of the printing press in Europe, in some detail"


async def _nothing(messages: Sequence[ChatMessage]) -> str | None:
    return None  # forces the extractive summary: deterministic text


def _agent(client: ScriptedChatClient, path: Path, **compaction: object) -> ChatAgent:
    return ChatAgent(
        client,
        "be brief",
        chat_message_store_factory=lambda: SQLiteChatMessageStore(path),
        compaction=Compaction(max_tokens=200, summarizer=_nothing, **compaction),  # type: ignore[arg-type]
    )


def _summaries(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    return [m for m in messages if summary_mark(m) is not None]


async def _chat(agent: ChatAgent, thread: AgentThread, turns: int) -> None:
    await agent.run("Hello. My name is Alice and I live in Lyon.", thread=thread)
    for i in range(turns - 1):
        await agent.run(f"{FILLER} ({i})", thread=thread)


async def test_old_turns_become_one_stored_summary_and_nothing_is_lost(tmp_path: Path) -> None:
    client = ScriptedChatClient(["Sure, here is a short answer."] * 12)
    agent = _agent(client, tmp_path / "t.db")
    thread = agent.get_new_thread()
    await _chat(agent, thread, 12)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()

    summaries = _summaries(stored)
    assert summaries, "a 12-turn chat over a 200-token budget was never compacted"
    originals = [m for m in stored if summary_mark(m) is None]
    assert len(originals) == 24  # every user message and answer is still in the thread
    assert originals[0].text == "Hello. My name is Alice and I live in Lyon."
    # Each summary names real messages of the thread, and each chain link its predecessor.
    ids = {m.message_id for m in stored}
    for earlier, later in zip(summaries, summaries[1:], strict=False):
        mark = summary_mark(later)
        assert mark is not None and mark.previous == earlier.message_id
    for summary in summaries:
        mark = summary_mark(summary)
        assert mark is not None and set(mark.replaces) <= ids
        assert "My name is Alice" in summary.text and "I live in Lyon" in summary.text
    # The model was sent the summary in place of turn 1, within the budget, every call.
    for call in client.calls:
        assert sum(map(estimate_tokens, call.messages)) <= 200
    last = client.calls[-1].messages
    assert [m.role for m in last[:2]] == [Role.SYSTEM, Role.SYSTEM]
    assert last[1].message_id == summaries[-1].message_id
    assert all("My name is Alice" not in m.text for m in last if m.role == Role.USER)
    # The thread survives a restore; the next turn is built from the same view.
    state = await thread.serialize()
    restored = await agent.deserialize_thread(state)
    assert restored.message_store is not None
    again = await restored.message_store.list_messages()
    assert again == stored
    assert list(compacted_view(again)) == list(compacted_view(stored))


async def test_a_fact_a_summary_kept_in_its_own_words_survives_the_next_summary(
    tmp_path: Path,
) -> None:
    # The first summary keeps the city in the model's words (so it quotes nothing); the next
    # model drops it. Found with the real 0.5B model in bench/compaction.py at --ctx 640.
    written: list[int] = []

    async def forgetful(messages: Sequence[ChatMessage]) -> str:
        written.append(len(messages))
        return "Alice lives in Lyon." if len(written) == 1 else "Alice asked about printing."

    agent = ChatAgent(
        ScriptedChatClient(["Sure, here is a short answer."] * 16),
        "be brief",
        chat_message_store_factory=lambda: SQLiteChatMessageStore(tmp_path / "t.db"),
        compaction=Compaction(max_tokens=200, summarizer=forgetful),
    )
    thread = agent.get_new_thread()
    await _chat(agent, thread, 16)
    assert thread.message_store is not None
    summaries = _summaries(await thread.message_store.list_messages())
    assert len(summaries) >= 2
    assert "The user said:" not in summaries[0].text  # the first kept the fact in its own words
    for summary in summaries[1:]:
        assert "Lyon" in summary.text and "Alice" in summary.text, summary.text


async def test_a_fork_before_the_summary_is_the_original_history(tmp_path: Path) -> None:
    agent = _agent(ScriptedChatClient(["ok, noted."] * 12), tmp_path / "t.db")
    thread = agent.get_new_thread()
    await _chat(agent, thread, 12)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    first = next(i for i, m in enumerate(stored) if summary_mark(m) is not None)
    branch = await thread.message_store.fork(at=first)
    before = await branch.list_messages()
    assert before == stored[:first]
    assert compacted_view(before) == before  # no summary: the model would see everything


async def test_a_tool_call_and_its_result_are_summarized_together(tmp_path: Path) -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    script: list[object] = []
    for i in range(10):
        script += [
            [FunctionCallContent(call_id=f"c{i}", name="weather", arguments='{"city":"Lyon"}')]
        ]
        script += [f"It is sunny ({i})."]
    client = ScriptedChatClient(script)  # type: ignore[arg-type]
    agent = _agent(client, tmp_path / "t.db").replace(tools=[weather])
    assert agent.compaction is not None  # replace() carries it
    thread = agent.get_new_thread()
    for i in range(10):
        await agent.run(f"What is the weather in Lyon today? ({i})", thread=thread)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    assert _summaries(stored)
    by_id = {m.message_id: m for m in stored}
    for summary in _summaries(stored):
        mark = summary_mark(summary)
        assert mark is not None
        calls = {
            c.call_id
            for i in mark.replaces
            for c in by_id[i].contents
            if type(c) is FunctionCallContent
        }
        results = {
            c.call_id
            for i in mark.replaces
            for c in by_id[i].contents
            if type(c) is FunctionResultContent
        }
        assert calls == results and calls
    for call in client.calls:  # every result sent follows its call
        sent_calls = {
            c.call_id for m in call.messages for c in m.contents if type(c) is FunctionCallContent
        }
        sent_results = {
            c.call_id for m in call.messages for c in m.contents if type(c) is FunctionResultContent
        }
        assert sent_results <= sent_calls


async def test_the_turn_in_progress_is_never_compacted(tmp_path: Path) -> None:
    deferred = FunctionTool(
        name="ask_human",
        description="Ask the human something.",
        parameters={"type": "object", "properties": {}},
    )
    call = FunctionCallContent(call_id="h1", name="ask_human", arguments="{}")
    client = ScriptedChatClient(["noted."] * 8 + [[call], "thanks."])
    agent = _agent(client, tmp_path / "t.db", keep_recent_tokens=0).replace(tools=[deferred])
    thread = agent.get_new_thread()
    await _chat(agent, thread, 8)
    stopped = await agent.run(FILLER, thread=thread)
    assert stopped.pending_calls == (call,)
    answer = ChatMessage(Role.TOOL, contents=[FunctionResultContent(call_id="h1", result="yes")])
    await agent.run(answer, thread=thread)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    asking = next(m for m in stored if call in m.contents)
    latest = _summaries(stored)[-1]
    mark = summary_mark(latest)
    assert mark is not None and asking.message_id not in mark.replaces
    sent = client.calls[-1].messages
    assert any(call in m.contents for m in sent)  # the call was sent with its answer


class GatedSummarizer:
    """Holds every summarizer call until the test opens the gate: both writers compact at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.both_waiting = asyncio.Event()
        self.waiting = 0

    async def __call__(self, messages: Sequence[ChatMessage]) -> str | None:
        self.waiting += 1
        if self.waiting == 2:
            self.both_waiting.set()
        await self.gate.wait()
        return None


async def test_two_writers_cannot_both_compact(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    seed = _agent(ScriptedChatClient(["short answer."] * 4), path, keep_recent_tokens=0)
    seed = seed.replace(compaction=None)
    thread = seed.get_new_thread()
    await _chat(seed, thread, 4)
    state = await thread.serialize()

    gated = GatedSummarizer()
    agent = ChatAgent(
        ScriptedChatClient(["from one.", "from two."]),
        chat_message_store_factory=lambda: SQLiteChatMessageStore(path),
        compaction=Compaction(max_tokens=100, summarizer=gated),
    )
    one, two = await agent.deserialize_thread(state), await agent.deserialize_thread(state)
    runs = [asyncio.create_task(agent.run(FILLER, thread=t)) for t in (one, two)]
    await gated.both_waiting.wait()
    gated.gate.set()
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], ConcurrentThreadUpdateError)
    assert one.message_store is not None
    stored = await one.message_store.list_messages()
    assert len(_summaries(stored)) == 1
    assert len(stored) == 8 + 1 + 2  # the seed, one summary, one turn


async def test_a_failed_turn_stores_its_input_but_no_summary(tmp_path: Path) -> None:
    client = ScriptedChatClient(["ok."] * 6 + [ClientError("model down"), "back."])
    agent = _agent(client, tmp_path / "t.db")
    thread = agent.get_new_thread()
    await _chat(agent, thread, 6)
    assert thread.message_store is not None
    before = len(_summaries(await thread.message_store.list_messages()))
    with pytest.raises(ClientError):
        await agent.run(f"{FILLER} (failing)", thread=thread)
    stored = await thread.message_store.list_messages()
    assert len(_summaries(stored)) == before
    assert any(type(c) is ErrorContent for c in stored[-1].contents)
    await agent.run("and now?", thread=thread)  # the next turn compacts and goes on
    assert (await thread.message_store.list_messages())[-1].text == "back."


async def test_a_budget_smaller_than_one_turn_summarizes_all_but_loses_nothing(
    tmp_path: Path,
) -> None:
    client = ScriptedChatClient(["a fairly long answer to what was asked, " * 3] * 5)
    agent = _agent(client, tmp_path / "t.db").replace(
        compaction=Compaction(max_tokens=5, summarizer=_nothing)
    )
    thread = agent.get_new_thread()
    await _chat(agent, thread, 5)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    assert len([m for m in stored if summary_mark(m) is None]) == 10
    sent = client.calls[-1].messages
    # All earlier turns are summarized; the newest input is sent whole.
    assert [m.role for m in sent] == [Role.SYSTEM, Role.SYSTEM, Role.USER]
    assert "My name is Alice" in sent[1].text


async def test_no_known_window_and_no_max_tokens_means_no_compaction(tmp_path: Path) -> None:
    client = ScriptedChatClient(["ok."] * 30)
    agent = ChatAgent(
        client,
        chat_message_store_factory=lambda: SQLiteChatMessageStore(tmp_path / "t.db"),
        compaction=Compaction(),
    )
    thread = agent.get_new_thread()
    await _chat(agent, thread, 30)
    assert len(client.calls[-1].messages) == 59


def test_the_default_budget_is_the_window_minus_the_reply_and_a_margin() -> None:
    class Windowed(ScriptedChatClient):
        context_window = 4096
        max_tokens = 512

    client = Windowed([])
    assert Compaction().budget(client, {}) == (4096 - 512) * 9 // 10
    assert Compaction().budget(client, {"max_tokens": 96}) == (4096 - 96) * 9 // 10
    assert Compaction(max_tokens=300).budget(client, {}) == 300
    assert Compaction().budget(ScriptedChatClient([]), {}) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_tokens": 0}, ValueError, "max_tokens=...\\) must be a positive int"),
        ({"max_tokens": -5}, ValueError, "got -5"),
        ({"keep_recent_tokens": -1}, ValueError, "non-negative"),
        ({"max_tokens": 100, "keep_recent_tokens": 100}, ValueError, "must be below"),
        ({"summary_max_tokens": 0}, ValueError, "summary_max_tokens"),
        ({"summarizer": 42}, UsageError, "must be a ChatClient or an async function"),
    ],
)
def test_bad_settings_are_refused_naming_them(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Compaction(**kwargs)  # type: ignore[arg-type]


def test_an_agent_refuses_a_compaction_that_is_not_one() -> None:
    with pytest.raises(UsageError, match="compaction must be a Compaction"):
        ChatAgent(ScriptedChatClient([]), compaction=1000)  # type: ignore[arg-type]


async def test_the_summary_mark_is_kept_by_every_thread_kind_it_is_stored_in(
    tmp_path: Path,
) -> None:
    agent = _agent(ScriptedChatClient(["ok."] * 8), tmp_path / "t.db").replace(
        chat_message_store_factory=None
    )
    thread = agent.get_new_thread()  # in memory
    await _chat(agent, thread, 8)
    state = await thread.serialize()
    restored = await agent.deserialize_thread(state)
    assert restored.message_store is not None
    stored = await restored.message_store.list_messages()
    marks = [c for m in stored for c in m.contents if type(c) is CompactionContent]
    assert marks and all(m.method == "extractive" for m in marks)


async def test_a_streamed_turn_compacts_and_stores_its_summary_the_same_way(
    tmp_path: Path,
) -> None:
    client = ScriptedChatClient(["ok, noted."] * 12)
    agent = _agent(client, tmp_path / "t.db")
    thread = agent.get_new_thread()
    await agent.run("Hello. My name is Alice and I live in Lyon.", thread=thread)
    for i in range(11):
        async for _ in agent.run_stream(f"{FILLER} ({i})", thread=thread):
            pass
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    assert _summaries(stored)
    assert len([m for m in stored if summary_mark(m) is None]) == 24
    assert client.calls[-1].messages[1].message_id == _summaries(stored)[-1].message_id


async def test_an_agent_without_compaction_sends_the_stored_thread_as_it_is(
    tmp_path: Path,
) -> None:
    agent = _agent(ScriptedChatClient(["ok."] * 12), tmp_path / "t.db")
    thread = agent.get_new_thread()
    await _chat(agent, thread, 12)
    plain_client = ScriptedChatClient(["fine."])
    plain = agent.replace(chat_client=plain_client, compaction=None)
    await plain.run("and now?", thread=thread)
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    sent = plain_client.calls[0].messages
    assert [m.message_id for m in sent[1:]] == [m.message_id for m in stored[:-1]]
