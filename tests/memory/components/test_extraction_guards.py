"""What the fact extractor is shown and what is kept of its answer (issue 21, item 3).

The extractor here is a ``ScriptedChatClient`` that records its requests and answers as a small
model did in the issue's sessions (trivia and the assistant's claims as facts about the user):
the guards must keep those out whatever the model answers. The real model's precision and
recall are measured in ``bench/extraction.py``; ``test_extraction_model.py`` runs a subset.
"""

from __future__ import annotations

import json

import pytest

from threadline import ChatAgent, ScriptedChatClient
from threadline.memory._extraction import grounded, statements
from threadline.memory.preferences import UserPreferencesMemory
from threadline.memory.store import MemoryStore
from threadline.types import ChatMessage, Role


def facts(*texts: str) -> str:
    return json.dumps(
        {"facts": [{"subject": f"s{i}", "fact": t, "kind": "fact"} for i, t in enumerate(texts)]}
    )


def test_statements_are_the_users_first_person_sentences_only() -> None:
    messages = [
        ChatMessage(Role.USER, "I'm vegetarian. What should I cook? Water boils at 100 C."),
        ChatMessage(Role.ASSISTANT, "Since you are not allergic to peanuts, try satay."),
        ChatMessage(Role.USER, "My sister lives in Oslo.\nCan you help me?"),
    ]
    assert statements(messages) == ["I'm vegetarian.", "My sister lives in Oslo."]


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("Hi, I am Ada and I live in Porto.", "I am Ada and I live in Porto."),
        ("hey there - I love jazz.", "I love jazz."),
        ("Good morning, I moved to Rome.", "I moved to Rome."),
        ("Highly recommend it: I love jazz.", "Highly recommend it: I love jazz."),
        ("Hilda is my sister.", "Hilda is my sister."),
    ],
)
def test_a_greeting_opening_a_statement_is_not_sent(text: str, sent: str) -> None:
    """The small model skips facts after "Hi, ..." (the city of the first command's greeting)."""
    assert statements([ChatMessage(Role.USER, text)]) == [sent]


def test_a_fact_must_be_grounded_in_what_the_user_said() -> None:
    said = ["I'm vegetarian and I live in Porto, and I'm allergic to peanuts."]
    assert grounded("The user is allergic to peanuts.", said)
    assert grounded("The user lives in Porto.", said)
    assert not grounded("The user's capital is Tokyo.", said)
    assert not grounded("The boiling point of water is 212 degrees Celsius.", said)
    assert not grounded("The user is not allergic to peanuts and loves steak.", ["I like tea."])


async def test_questions_and_requests_never_reach_the_extractor(store: MemoryStore) -> None:
    extractor = ScriptedChatClient([facts("The user's capital is Tokyo.")])
    memory = UserPreferencesMemory(store, extractor=extractor, tools=False)
    agent = ChatAgent(ScriptedChatClient(["Tokyo.", "Sure."]), context_providers=[memory])
    thread = agent.get_new_thread(user_id="ada")
    await agent.run("What's the capital of Japan?", thread=thread)
    await agent.run("Write a haiku about autumn.", thread=thread)
    await memory.wait_pending()
    assert extractor.calls == []  # no model time spent on turns that state nothing
    assert await memory.facts(user_id="ada") == []


async def test_the_extractor_sees_no_assistant_text_and_ungrounded_facts_are_dropped(
    store: MemoryStore,
) -> None:
    extractor = ScriptedChatClient(
        [facts("The user is allergic to peanuts.", "The user loves steak.")]
    )
    memory = UserPreferencesMemory(store, extractor=extractor, tools=False)
    model = ScriptedChatClient(["As you love steak and are not allergic to peanuts, try satay."])
    agent = ChatAgent(model, context_providers=[memory])
    await agent.run("I'm allergic to peanuts.", thread=agent.get_new_thread(user_id="ada"))
    await memory.wait_pending()
    sent = "\n".join(m.text for m in extractor.calls[0].messages)
    assert "I'm allergic to peanuts." in sent
    assert "steak" not in sent and "satay" not in sent  # the assistant's reply is not a source
    kept = [r.text for r in await memory.facts(user_id="ada")]
    assert kept == ["The user is allergic to peanuts."]  # "loves steak": never said by the user
