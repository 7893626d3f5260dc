"""Memory never limits a message's size (issue 20 item 1).

The stores refuse a search query over 4,000 characters; the memory components used to send the
whole input as the query, so a long message (or two of 2,500 characters, joined) failed the run
before the model was called. They now derive a bounded query: the newest message first, a long
one by its beginning and its end, where what is asked usually is.
"""

from __future__ import annotations

import pytest

from threadline import ChatAgent, ChatMessage, Role, ScriptedChatClient
from threadline.memory._text import QUERY_CHARS, search_query
from threadline.memory.conversation import ConversationMemory
from threadline.memory.preferences import ExtractedFact, UserPreferencesMemory
from threadline.memory.store import MemoryStore


def pasted(chars: int, seed: int = 0) -> str:
    """A pasted log of about ``chars`` characters, many distinct words."""
    lines: list[str] = []
    size = 0
    i = seed
    while size < chars:
        line = f"2024-03-0{i % 9 + 1} worker{i} handled request{i * 7} in {i % 97} ms status ok"
        lines.append(line)
        size += len(line) + 1
        i += 1
    return "\n".join(lines)[:chars]


LONG = pasted(4_400) + "\nWhat is my locker code?"
TWO = [pasted(2_500), pasted(2_470, seed=500) + "\nWhat is my locker code?"]
INPUTS = {"one message of 4,400+": [LONG], "two messages of 2,500": TWO}


def system_text(client: ScriptedChatClient) -> str:
    messages = client.calls[-1].messages
    return messages[0].text if messages and messages[0].role == Role.SYSTEM else ""


@pytest.mark.parametrize("texts", INPUTS.values(), ids=INPUTS.keys())
async def test_conversation_memory_answers_a_long_input(
    store: MemoryStore, texts: list[str]
) -> None:
    assert sum(len(t) for t in texts) > 4_000
    client = ScriptedChatClient(["Noted.", "It is 4471."])
    agent = ChatAgent(client, "Be brief.", context_providers=ConversationMemory(store))
    await agent.run("My locker code is 4471.", thread=agent.get_new_thread(user_id="ada"))

    thread = agent.get_new_thread(user_id="ada")
    response = await agent.run([ChatMessage(Role.USER, t) for t in texts], thread=thread)

    assert response.text == "It is 4471."
    assert "4471" in system_text(client)  # the question at the end of the input was searched
    sent = [m.text for m in client.calls[-1].messages if m.role == Role.USER]
    assert sent[-len(texts) :] == texts  # the model got the input whole


@pytest.mark.parametrize("texts", INPUTS.values(), ids=INPUTS.keys())
async def test_preferences_memory_answers_a_long_input(
    store: MemoryStore, texts: list[str]
) -> None:
    # More facts than the limit, so the input is searched for the most relevant ones.
    memory = UserPreferencesMemory(store, limit=5, tools=False)
    await memory.add_facts(
        [
            ExtractedFact(f"topic{i}", f"The user collects stamps of country {i}.", "fact")
            for i in range(8)
        ]
        + [ExtractedFact("locker", "The user's locker code is 4471.", "fact")],
        user_id="ada",
    )
    client = ScriptedChatClient(["It is 4471."])
    agent = ChatAgent(client, "Be brief.", context_providers=memory)
    thread = agent.get_new_thread(user_id="ada")

    response = await agent.run([ChatMessage(Role.USER, t) for t in texts], thread=thread)

    assert response.text == "It is 4471."
    assert "locker code is 4471" in system_text(client)
    await memory.aclose()


def test_the_derived_query_is_bounded_and_keeps_what_is_asked() -> None:
    assert search_query(["", "  "]) is None
    assert search_query(["first", "second"]) == "second\nfirst"  # the newest first
    assert search_query(["a " * 1_500, "short question?"]) == "short question?"
    query = search_query([LONG])
    assert query is not None
    assert len(query) <= QUERY_CHARS + 2
    assert query.endswith("What is my locker code?")
    assert query.startswith("2024-03-01 worker0")
    one_word = search_query(["x" * 10_000])
    assert one_word is not None and len(one_word) <= QUERY_CHARS + 3
