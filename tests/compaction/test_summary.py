"""Summaries: the user's facts survive, and every failure of the writer falls back safely."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from threadline import ChatMessage, Role, ScriptedChatClient
from threadline.compaction import extractive_summary, user_facts
from threadline.compaction.summary import summarize
from threadline.history import estimate_tokens

CHAT = [
    ChatMessage(Role.USER, "Hi! My name is Alice Moreau. I live in Lyon."),
    ChatMessage(Role.ASSISTANT, "Nice to meet you, Alice."),
    ChatMessage(Role.USER, "Tell me about Rome. What is the capital of Peru?"),
    ChatMessage(Role.ASSISTANT, "Rome is old. Lima."),
    ChatMessage(Role.USER, "I was born on 12 March 1990 and I have 2 cats."),
    ChatMessage(Role.ASSISTANT, "Noted."),
    ChatMessage(Role.USER, "i like rain."),
]


def test_facts_are_the_users_statements_naming_people_places_numbers_dates() -> None:
    assert user_facts(CHAT) == [
        "My name is Alice Moreau.",
        "I live in Lyon.",
        "I was born on 12 March 1990 and I have 2 cats.",
    ]


def test_the_extractive_summary_keeps_every_fact_within_its_size() -> None:
    text = extractive_summary(CHAT, max_tokens=80, count_tokens=estimate_tokens)
    assert text is not None
    for word in ("Alice Moreau", "Lyon", "12 March 1990", "2 cats"):
        assert word in text
    assert estimate_tokens(ChatMessage(Role.SYSTEM, text)) <= 80


def test_an_extractive_summary_too_small_for_one_fact_is_none() -> None:
    assert extractive_summary(CHAT, max_tokens=10, count_tokens=estimate_tokens) is None


async def _summarize(writer: object, limit: int = 120) -> tuple[str, str] | None:
    return await summarize(
        CHAT,
        writer=writer,  # type: ignore[arg-type]
        max_tokens=limit,
        count_tokens=estimate_tokens,
    )


async def test_facts_the_model_leaves_out_are_quoted_after_its_summary() -> None:
    made = await _summarize(ScriptedChatClient(["Alice from Lyon chatted about Rome and Peru."]))
    assert made is not None
    text, method = made
    assert method == "model"
    assert "Alice from Lyon chatted" in text
    assert '- "I was born on 12 March 1990 and I have 2 cats."' in text
    assert '"My name is Alice Moreau."' in text  # "Moreau" was missing


async def test_a_summarizer_function_is_used_and_named() -> None:
    async def write(messages: Sequence[ChatMessage]) -> str:
        return "Alice Moreau (Lyon, born 12 March 1990, 2 cats) asked about Rome and Peru."

    made = await _summarize(write)
    assert made is not None
    assert made[1] == "summarizer"
    assert "The user said" not in made[0]  # every fact is in its text already


async def _raises(messages: Sequence[ChatMessage]) -> str:
    raise RuntimeError("summarizer down")


async def _nothing(messages: Sequence[ChatMessage]) -> str | None:
    return None


async def _blank(messages: Sequence[ChatMessage]) -> str:
    return "  \n"


async def _longer(messages: Sequence[ChatMessage]) -> str:
    return "blah " * 2000


@pytest.mark.parametrize("writer", [_raises, _nothing, _blank, _longer])
async def test_a_writer_that_fails_falls_back_to_an_extractive_summary(writer: object) -> None:
    made = await _summarize(writer)
    assert made is not None
    text, method = made
    assert method == "extractive"
    assert "Alice Moreau" in text and "Lyon" in text and "12 March 1990" in text


async def test_a_chain_carries_the_facts_an_earlier_summary_quoted() -> None:
    first = await _summarize(_nothing)
    assert first is not None
    from threadline import CompactionContent, TextContent

    earlier = ChatMessage(
        Role.SYSTEM, contents=[TextContent(first[0]), CompactionContent(replaces=("x",))]
    )
    later = [earlier, ChatMessage(Role.USER, "What is 2+2?"), ChatMessage(Role.ASSISTANT, "4")]
    assert user_facts(later) == user_facts(CHAT)


def test_the_extractive_summary_lists_topics_only_when_one_fits() -> None:
    # Regression: a summary once ended with "The user also asked about:" and nothing under it.
    chat = [ChatMessage(Role.USER, "My name is Alice and I live in Lyon."), *CHAT[2:4]]
    roomy = extractive_summary(chat, max_tokens=60, count_tokens=estimate_tokens)
    assert roomy is not None and roomy.endswith(
        "- Tell me about Rome. What is the capital of Peru?"
    )
    tight = extractive_summary(chat, max_tokens=40, count_tokens=estimate_tokens)
    assert tight is not None and tight.endswith('- "My name is Alice and I live in Lyon."')
