from __future__ import annotations

import json

import pytest

from threadline import (
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    SequentialProcess,
)

from .conftest import cast, shape, thread_shape

SCRIPTS = {"drafter": ["Draft.", "Draft 2."], "reviewer": ["Review."], "publisher": ["Final."]}


async def test_each_agent_builds_on_the_ones_before_and_the_last_one_answers() -> None:
    agents, clients = cast(SCRIPTS)
    process = SequentialProcess(agents)
    response = await process.run("Write about lamps.")
    assert response.stop_reason == "done"
    assert response.last_text == "Final."
    assert shape(response.messages) == [
        ("assistant", "drafter", "Draft."),
        ("assistant", "reviewer", "Review."),
        ("assistant", "publisher", "Final."),
    ]
    assert shape(clients["publisher"].calls[0].messages) == [
        ("system", None, "You are publisher."),
        ("user", None, "Write about lamps."),
        ("user", "drafter", "Draft."),
        ("user", "reviewer", "Review."),
    ]
    # The next user turn starts a new pass with the first agent, which saw everything.
    clients["reviewer"].add_replies("Review 2.")
    clients["publisher"].add_replies("Final 2.")
    again = await process.run("Shorter.", thread=response.thread)
    assert again.last_text == "Final 2."
    assert shape(clients["drafter"].calls[1].messages)[-3:] == [
        ("user", "reviewer", "Review."),
        ("user", "publisher", "Final."),
        ("user", None, "Shorter."),
    ]


async def test_a_process_takes_an_arbitrary_chat_history() -> None:
    agents, clients = cast({"summarizer": ["Summary."]})
    history = [
        ChatMessage(Role.USER, "Book a table."),
        ChatMessage(
            Role.ASSISTANT,
            contents=[FunctionCallContent(call_id="c9", name="book", arguments="{}")],
            author_name="concierge",
        ),
        ChatMessage(Role.TOOL, contents=[FunctionResultContent(call_id="c9", result="ok")]),
        ChatMessage(Role.ASSISTANT, "Booked for 8pm.", author_name="concierge"),
        ChatMessage(Role.USER, "Summarize that."),
    ]
    response = await SequentialProcess(agents).run(history)
    assert response.text == "Summary."
    assert shape(clients["summarizer"].calls[0].messages) == [
        ("system", None, "You are summarizer."),
        ("user", None, "Book a table."),
        ("user", "concierge", "[called tool book({})]"),
        ("user", None, '[tool book returned "ok"]'),
        ("user", "concierge", "Booked for 8pm."),
        ("user", None, "Summarize that."),
    ]


@pytest.mark.parametrize("k", [1, 2])
async def test_a_pass_stopped_midway_resumes_with_the_next_agent(k: int) -> None:
    agents, clients = cast(SCRIPTS)
    first = await SequentialProcess(agents).run("Go.", max_rounds=k)
    assert first.stop_reason == "max_rounds"
    state = json.loads(json.dumps(await first.thread.serialize()))
    fresh, _ = cast(SCRIPTS, clients=clients)
    process = SequentialProcess(fresh)
    thread = await process.deserialize_thread(state)
    assert thread.next_speaker == ["drafter", "reviewer", "publisher"][k]
    rest = await process.run(thread=thread)
    assert rest.stop_reason == "done" and rest.last_text == "Final."
    assert [m.author_name for m in (*first.messages, *rest.messages)] == [
        "drafter",
        "reviewer",
        "publisher",
    ]
    assert await thread_shape(thread.participants["publisher"]) == [
        ("user", None, "Go."),
        ("user", "drafter", "Draft."),
        ("user", "reviewer", "Review."),
        ("assistant", "publisher", "Final."),
    ]
    # Nothing left to do: a run without input on a finished pass does nothing.
    idle = await process.run(thread=thread)
    assert (idle.messages, idle.stop_reason) == ((), "done")


async def test_stream_labels_each_agent() -> None:
    agents, _ = cast(SCRIPTS)
    process = SequentialProcess(agents)
    thread = process.get_new_thread()
    authors = [u.author_name async for u in process.run_stream("Go.", thread=thread) if u.text]
    assert authors[0] == "drafter" and authors[-1] == "publisher"
    assert thread.next_speaker is None and thread.last_speaker == "publisher"
    with pytest.raises(Exception, match="sequential"):
        from threadline import GroupChat

        await GroupChat(agents).deserialize_thread(await thread.serialize())
