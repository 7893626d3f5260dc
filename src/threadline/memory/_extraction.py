"""Fact extraction: ask a chat client for durable facts about the user, as strict JSON.

Only what the user said about themselves is a source (issue 21: answers to trivia questions and
the assistant's own wrong claims were stored as facts about the user). Three guards, measured on
``bench/extraction_set.json`` with ``bench/extraction.py``:

* the extractor never sees the assistant's replies, only the user's sentences;
* of those, only statements in the first person (``I``, ``my``, ``we``...) that are not
  questions are sent; a turn without one is not sent at all (no model call: it also keeps the
  model free for the chat);
* a fact is kept only when it is grounded in those sentences: most of its words (beyond "the
  user") were said by the user, so a fact the model made up or took from its own knowledge
  ("The capital is Tokyo.") is dropped.

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

__all__ = [
    "FACTS_SCHEMA",
    "ExtractedFact",
    "extraction_options",
    "grounded",
    "parse_facts",
    "request_facts",
    "statements",
]

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
From what the user just said about themselves, extract facts that will still be true in later
conversations (diet, allergies, health, family, home, job, likes and dislikes, plans with
dates). Only facts about the user and their own people; never general knowledge, facts about
famous or fictional people, or anything the user asks for. Answer with JSON only, exactly this
shape:
{"facts": [{"subject": "diet", "fact": "The user is vegetarian.", "kind": "preference"}]}
- subject: a short snake_case key naming what the fact is about; reuse the key of a known fact
  when the new fact updates or contradicts it.
- fact: one self-contained sentence in the third person.
- kind: "preference" for likes, dislikes and wishes, else "fact".
Answer {"facts": []} when there is nothing durable."""

_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "I just started a job as a teacher in Austin.",
        '{"facts": [{"subject": "job", "fact": "The user works as a teacher.", "kind": "fact"}, '
        '{"subject": "home_city", "fact": "The user lives in Austin.", "kind": "fact"}]}',
    ),
    (
        "I'm diabetic and I can't stand spicy food.",
        '{"facts": [{"subject": "health", "fact": "The user is diabetic.", "kind": "fact"}, '
        '{"subject": "spicy_food", "fact": "The user dislikes spicy food.", '
        '"kind": "preference"}]}',
    ),
    (
        "I think the Moon is about 384,000 km away.",
        '{"facts": []}',
    ),
)
"""Worked examples, sent as earlier turns of the extraction request: two statements with facts
(one of them a health fact, so allergies and conditions are not missed) and one first-person
sentence that holds none. Questions and requests need no example: they never reach the model
(see :func:`statements`)."""

_MAX_ANSWER_TOKENS = 512
"""Room for the answer whatever the client's own default: a few facts take under 100 tokens, and
a cut-off answer is invalid JSON, so nothing would be stored."""

_SUBJECT = re.compile(r"[^a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_FIRST_PERSON = re.compile(
    r"\b(i|i'm|im|i've|i'd|i'll|my|mine|myself|we|we're|we've|our|ours)\b", re.IGNORECASE
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening))(?: there)?"
    r"\s*[,!.:;-]*\s+",
    re.IGNORECASE,
)
"""A greeting opening a sentence ("Hi, I'm Ada and I live in Porto."): taken off before the
sentence is sent, because the small model then skips facts it finds without it (the city)."""
_WORD = re.compile(r"[^\W_]+")
_FILLER = frozenset(
    "the user user's users a an is are was were be been has have had and or of to in on at for "
    "with as by from their they them he she his her its it this that who which also now not no "
    "does do did likes like prefers prefer loves love enjoys enjoy wants want named called "
    "works work lives live currently".split()
)
_GROUNDED = 0.5
"""The share of a fact's own words the user must have said (by their first five letters)."""
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


def statements(messages: Sequence[ChatMessage]) -> list[str]:
    """The user's sentences that may say something about them: first person, not questions.

    Only user messages count; the assistant's replies are never a source of facts.
    """
    out: list[str] = []
    for message in messages:
        if message.role != Role.USER:
            continue
        for sentence in _SENTENCE.split(message.text.strip()):
            sentence = _GREETING.sub("", " ".join(sentence.split()))
            if sentence and not sentence.endswith("?") and _FIRST_PERSON.search(sentence):
                out.append(sentence)
    return out


def _stems(text: str) -> list[str]:
    return [w[:5] for w in _WORD.findall(text.lower()) if w not in _FILLER]


def grounded(fact: str, said: Sequence[str]) -> bool:
    """True when most of ``fact``'s own words were said by the user (see the module docstring)."""
    words = _stems(fact)
    if not words:
        return False
    heard = {w for sentence in said for w in _stems(sentence)}
    return sum(w in heard for w in words) >= _GROUNDED * len(words)


async def request_facts(
    client: ChatClient,
    messages: Sequence[ChatMessage],
    known: Sequence[MemoryRecord],
    options: ChatOptions,
) -> str:
    """Ask ``client`` for the facts in the user's statements; returns its raw answer text.

    ``messages`` are the turn's messages; only the user's :func:`statements` are sent. Returns
    ``'{"facts": []}'`` without calling the model when there are none.
    """
    said = statements(messages)
    if not said:
        return '{"facts": []}'
    lines = [f"- {r.metadata.get('subject', 'other')}: {r.text}" for r in known if r.kind != "turn"]
    known_text = "Known facts:\n" + "\n".join(lines) if lines else "Known facts: none"
    request = [ChatMessage(Role.SYSTEM, _PROMPT)]
    for shown, answer in _EXAMPLES:
        request.append(ChatMessage(Role.USER, f"Known facts: none\n\nThe user said:\n{shown}"))
        request.append(ChatMessage(Role.ASSISTANT, answer))
    # Known facts after the examples: the start of the request stays the same from turn to
    # turn, so a local model reuses what it evaluated of it.
    text = "\n".join(said)
    request.append(ChatMessage(Role.USER, f"{known_text}\n\nThe user said:\n{text}"))
    response = await client.get_response(request, options=options)
    return response.text
