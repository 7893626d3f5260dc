"""Fact extraction: ask a chat client for durable facts about the user, as strict JSON.

The answer is foreign text from a model, so it is parsed defensively: anything that is not the
promised shape yields ``None`` (the caller stores nothing and warns), never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from threadline.memory.records import MemoryRecord
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.clients.base import ChatClient, ChatOptions

__all__ = ["FACTS_SCHEMA", "ExtractedFact", "extraction_options", "parse_facts", "request_facts"]

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": "string"},
                    "fact": {"type": "string"},
                    "kind": {"type": "string", "enum": ["fact", "preference"]},
                },
                "required": ["subject", "fact", "kind"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}
"""What the extractor must answer: ``{"facts": [{"subject", "fact", "kind"}]}``."""

_PROMPT = """You maintain a memory of durable facts and preferences about the user.
From the user's latest messages, extract facts that will still be true in later conversations
(diet, allergies, family, home, job, likes and dislikes, plans with dates). Ignore small talk,
questions, and anything about the assistant. Answer with JSON only, exactly this shape:
{"facts": [{"subject": "diet", "fact": "The user is vegetarian.", "kind": "preference"}]}
- subject: a short snake_case key naming what the fact is about; reuse the key of a known fact
  when the new fact updates or contradicts it.
- fact: one self-contained sentence in the third person.
- kind: "preference" for likes, dislikes and wishes, else "fact".
Answer {"facts": []} when there is nothing durable."""

_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "user: I just started a job as a teacher in Austin.\n"
        "assistant: Congratulations on the new job!",
        '{"facts": [{"subject": "job", "fact": "The user works as a teacher.", "kind": "fact"}, '
        '{"subject": "home_city", "fact": "The user lives in Austin.", "kind": "fact"}]}',
    ),
    (
        "user: How long should I boil an egg?\nassistant: About six minutes for a soft yolk.",
        '{"facts": []}',
    ),
    (
        "user: I can't stand spicy food.\nassistant: Noted, I'll keep suggestions mild.",
        '{"facts": [{"subject": "spicy_food", "fact": "The user dislikes spicy food.", '
        '"kind": "preference"}]}',
    ),
    (
        "user: Can you suggest something to watch tonight?\n"
        "assistant: How about a documentary about the ocean?",
        '{"facts": []}',
    ),
)
"""Worked examples, sent as earlier turns of the extraction request. Measured with the embedded
0.5B model on 12 messages, each followed by a generic assistant reply: without examples it found
2 of 8 durable statements ("I'm vegetarian." not among them); with these two examples of facts
and two of requests that hold none, 7 of 8, and it still left all 4 plain requests alone."""

_MAX_ANSWER_TOKENS = 512
"""Room for the answer whatever the client's own default: a few facts take under 100 tokens, and
a cut-off answer is invalid JSON, so nothing would be stored."""

_SUBJECT = re.compile(r"[^a-z0-9]+")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    """One fact as the extractor stated it."""

    subject: str
    fact: str
    kind: Literal["fact", "preference"]


def extraction_options() -> ChatOptions:
    """Deterministic settings that ask ``client`` for JSON of :data:`FACTS_SCHEMA`.

    Every client takes OpenAI's ``json_schema`` form with ``strict``; ``LocalChatClient`` turns
    it into a llama.cpp grammar, so even the small embedded model answers only that JSON.
    """
    response_format: dict[str, Any] = {
        "type": "json_schema",
        "json_schema": {"name": "user_facts", "strict": True, "schema": FACTS_SCHEMA},
    }
    return {
        "temperature": 0.0,
        "max_tokens": _MAX_ANSWER_TOKENS,
        "additional_properties": {"response_format": response_format},
    }


def parse_facts(text: str) -> list[ExtractedFact] | None:
    """The facts in an extractor's answer, or ``None`` when it is not the promised JSON."""
    try:
        data: Any = json.loads(_FENCE.sub("", text.strip()))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    facts: Any = cast(dict[str, Any], data).get("facts")
    if not isinstance(facts, list):
        return None
    out: list[ExtractedFact] = []
    for item in cast(list[Any], facts):
        if not isinstance(item, dict):
            return None
        entry = cast(dict[str, Any], item)
        subject, fact, kind = entry.get("subject"), entry.get("fact"), entry.get("kind", "fact")
        if not isinstance(subject, str) or not isinstance(fact, str):
            return None
        key = _SUBJECT.sub("_", subject.lower()).strip("_")
        if not key or not fact.strip():
            continue
        out.append(
            ExtractedFact(
                subject=key[:64],
                fact=" ".join(fact.split())[:500],
                kind="preference" if kind == "preference" else "fact",
            )
        )
    return out


async def request_facts(
    client: ChatClient,
    messages: Sequence[ChatMessage],
    known: Sequence[MemoryRecord],
    options: ChatOptions,
) -> str:
    """Ask ``client`` for the facts in ``messages``; returns its raw answer text."""
    lines = [f"- {r.metadata.get('subject', 'other')}: {r.text}" for r in known if r.kind != "turn"]
    known_text = "Known facts:\n" + "\n".join(lines) if lines else "Known facts: none"
    transcript = "\n".join(f"{m.role.value}: {m.text}" for m in messages if m.text.strip())
    request = [ChatMessage(Role.SYSTEM, _PROMPT)]
    for shown, answer in _EXAMPLES:
        request.append(ChatMessage(Role.USER, f"Known facts: none\n\nLatest messages:\n{shown}"))
        request.append(ChatMessage(Role.ASSISTANT, answer))
    request.append(ChatMessage(Role.USER, f"{known_text}\n\nLatest messages:\n{transcript}"))
    response = await client.get_response(request, options=options)
    return response.text
