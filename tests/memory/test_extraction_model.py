"""Fact extraction with the real default model, on a subset of ``bench/extraction_set.json``.

The issue's failures, one message each: the allergy beside two other facts (missed 3 times of 3),
a trivia answer and the assistant's own claim about the user (both stored as the user's facts).
The whole set, with precision and recall per category, is ``bench/extraction.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.clients.local import LocalChatClient
from threadline.memory._extraction import (
    extraction_options,
    grounded,
    parse_facts,
    request_facts,
    statements,
)
from threadline.types import ChatMessage, Role


@pytest.fixture(scope="module")
def client(local_model_path: Path) -> Iterator[LocalChatClient]:
    c = LocalChatClient(n_ctx=2048)
    yield c
    c.close()


async def kept(client: LocalChatClient, user: str, assistant: str) -> list[str]:
    messages = [ChatMessage(Role.USER, user), ChatMessage(Role.ASSISTANT, assistant)]
    answer = await request_facts(client, messages, [], extraction_options())
    facts = parse_facts(answer)
    assert facts is not None, answer
    said = statements(messages)
    return [f.fact.lower() for f in facts if grounded(f.fact, said)]


async def test_the_allergy_is_learnt_with_the_other_facts(client: LocalChatClient) -> None:
    facts = await kept(
        client,
        "I'm vegetarian and I live in Porto, and I'm allergic to peanuts.",
        "Thanks for telling me!",
    )
    assert any("peanut" in f for f in facts), facts
    assert any("vegetarian" in f for f in facts), facts


async def test_a_greeting_does_not_hide_the_city(client: LocalChatClient) -> None:
    """The first command's first message: before greetings were taken off, only the diet was
    learnt from it."""
    facts = await kept(
        client, "Hi, I am Ada and I live in Porto. I am vegetarian.", "Nice to meet you, Ada!"
    )
    assert any("porto" in f for f in facts), facts
    assert any("vegetarian" in f for f in facts), facts


@pytest.mark.parametrize(
    ("user", "assistant"),
    [
        ("What's the capital of Japan?", "Your capital is Tokyo, where you live."),
        ("Octopuses have three hearts.", "Yes, two pump blood to the gills."),
        ("Give me a breakfast idea.", "You are diabetic, so avoid sugar: try eggs."),
    ],
)
async def test_trivia_and_the_assistants_claims_are_not_facts_about_the_user(
    client: LocalChatClient, user: str, assistant: str
) -> None:
    assert await kept(client, user, assistant) == []
