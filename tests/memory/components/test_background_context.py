"""Memories as a background message: the prompt's start stays the same every turn (issue 21).

With ``context_as="messages"`` (what ``threadline chat`` uses), recalled facts and past turns
go in one place, right before the newest input, worded as background about the user; the system
message and the history before it are identical from turn to turn, which is what lets a local
model reuse its evaluated prompt. The recorded requests of a ``ScriptedChatClient`` show it.
"""

from __future__ import annotations

import pytest

from threadline import ChatAgent, ScriptedChatClient
from threadline.memory._background import BACKGROUND
from threadline.memory.conversation import ConversationMemory
from threadline.memory.preferences import ExtractedFact, UserPreferencesMemory
from threadline.memory.store import MemoryStore
from threadline.types import ChatMessage, Role


async def test_memories_never_move_the_start_of_the_prompt(store: MemoryStore) -> None:
    """What ``threadline chat`` uses: facts pinned in the thread's instructions at its first
    call, past turns as a background message before the newest input, each sent once."""
    facts = UserPreferencesMemory(store, tools=False, context_as="pinned")
    await facts.add_facts([ExtractedFact("diet", "The user is vegetarian.", "fact")], user_id="ada")
    past = ConversationMemory(store, context_as="messages")
    await past.ingest(
        [ChatMessage(Role.USER, "I cook lentil soup every Sunday.")],
        user_id="ada",
        thread_id="thread_old",
    )
    model = ScriptedChatClient(["Try a risotto.", "Lentil soup, as usual?"])
    agent = ChatAgent(model, "You are helpful.", context_providers=[past, facts])
    thread = agent.get_new_thread(user_id="ada")
    await agent.run("What should I cook tonight?", thread=thread)
    # A fact learnt meanwhile is in this thread's history already: the pinned text stays.
    await facts.add_facts([ExtractedFact("city", "The user lives in Oslo.", "fact")], user_id="ada")
    await agent.run("And for Sunday, soup again?", thread=thread)

    first, second = (call.messages for call in model.calls)
    assert first[0].text == second[0].text  # the same system message, word for word
    assert BACKGROUND in first[0].text and "vegetarian" in first[0].text
    assert "Oslo" not in second[0].text
    background = first[-2]  # right before the newest input, worded as background
    assert background.role == Role.USER and background.text.startswith(BACKGROUND)
    assert "lentil soup" in background.text
    assert first[-1].text == "What should I cook tonight?"
    # The second call starts with the first one's system message and turn, unchanged, and does
    # not send the same past turn again.
    assert [m.text for m in second] == [
        first[0].text,
        "What should I cook tonight?",
        "Try a risotto.",
        "And for Sunday, soup again?",
    ]
    # The note says whom it is about: the person the model talks to, never the model itself
    # ("earlier conversations with you (the user)" had the 0.5B model answer "My dog is Rex.";
    # bench/memory_use.py: replies in the user's voice or about "the user" 26 of 96, now 14).
    assert "the person you are talking to" in BACKGROUND
    assert "(the user)" not in BACKGROUND


async def test_instructions_recall_again_for_every_call(store: MemoryStore) -> None:
    """The library's default placement is unchanged: facts as of each call."""
    facts = UserPreferencesMemory(store, tools=False)
    model = ScriptedChatClient(["a", "b"])
    agent = ChatAgent(model, "You are helpful.", context_providers=[facts])
    thread = agent.get_new_thread(user_id="ada")
    await agent.run("Hello.", thread=thread)
    await facts.add_facts([ExtractedFact("city", "The user lives in Oslo.", "fact")], user_id="ada")
    await agent.run("Hello again.", thread=thread)
    assert "Oslo" not in model.calls[0].messages[0].text
    assert "Oslo" in model.calls[1].messages[0].text


def test_an_unknown_placement_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'instructions', 'messages' or 'pinned'"):
        UserPreferencesMemory(context_as="system")  # type: ignore[arg-type]


@pytest.mark.parametrize("replies", [False, True])
async def test_past_replies_can_be_left_out_of_recall(store: MemoryStore, replies: bool) -> None:
    """Issue 21: the assistant's wrong reply of chat 1 came back word for word in chat 2."""
    past = ConversationMemory(store, context_as="messages", recall_replies=replies)
    await past.ingest(
        [
            ChatMessage(Role.USER, "Am I allergic to peanuts? I told you last week."),
            ChatMessage(Role.ASSISTANT, "You are not allergic to peanuts, enjoy peanut butter!"),
        ],
        user_id="ada",
        thread_id="thread_old",
    )
    model = ScriptedChatClient(["Let me check."])
    agent = ChatAgent(model, "You are helpful.", context_providers=[past])
    thread = agent.get_new_thread(user_id="ada")
    await agent.run("Peanuts and allergies: what do you know?", thread=thread)
    sent = "\n".join(m.text for m in model.calls[0].messages)
    assert "Am I allergic to peanuts?" in sent  # the user's own words come back
    assert ("You are not allergic" in sent) == replies
    hits = await past.recall("peanut butter", user_id="ada")
    assert any("peanut butter" in h.text for h in hits)  # still indexed and searchable
