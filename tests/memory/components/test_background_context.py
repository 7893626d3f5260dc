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


async def test_memories_sit_before_the_newest_input_and_the_start_never_moves(
    store: MemoryStore,
) -> None:
    facts = UserPreferencesMemory(store, tools=False, context_as="messages")
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
    await agent.run("And for Sunday, soup again?", thread=thread)

    first, second = (call.messages for call in model.calls)
    assert first[0] == second[0] and first[0].text == "You are helpful."  # the same system message
    for request, newest in ((first, "What should I cook tonight?"), (second, "And for Sunday")):
        assert request[-1].role == Role.USER and request[-1].text.startswith(newest)
        background = [m for m in request if m.text.startswith(BACKGROUND)]
        assert background and all(request.index(m) >= len(request) - 3 for m in background)
        told = "\n".join(m.text for m in background)
        assert "vegetarian" in told and "lentil soup" in told
    # The second request starts with the first one's system message and turn, unchanged.
    history = [m for m in second if not m.text.startswith(BACKGROUND)][:3]
    assert [m.text for m in history] == [
        "You are helpful.",
        "What should I cook tonight?",
        "Try a risotto.",
    ]
    assert "you" in BACKGROUND.lower() and "background" in BACKGROUND.lower()


def test_an_unknown_placement_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'instructions' or 'messages'"):
        UserPreferencesMemory(context_as="system")  # type: ignore[arg-type]
