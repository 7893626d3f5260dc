"""Writing a summary of old turns: by a model, with the user's own facts kept, or extractively.

A small model summarizes badly: it drops names, answers a question from the transcript instead, or
writes more than it was given. So a model's summary is never trusted alone:

* The facts the user stated about themselves (first-person statements naming someone, a place, a
  number or a date, e.g. "My name is Alice", "I moved to Lyon in 2019") are found in the user's
  own words, and any the model's text leaves out are quoted after it, verbatim. Facts quoted by an
  earlier summary carry into the next one, so they survive a chain of compactions.
* When the model fails (raises, returns nothing, or writes something no shorter than what it
  replaces), an extractive summary is used: the facts and the opening words of the user's
  messages, cut to size. If even that is not shorter than the originals, there is no summary
  (the caller compacts nothing this time: nothing is lost, the request is just longer).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

from threadline.clients.base import ChatClient, ChatOptions
from threadline.compaction.view import summary_mark
from threadline.history import TokenCounter
from threadline.types.contents import FunctionCallContent, FunctionResultContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "SUMMARY_HEADER",
    "Summarizer",
    "extractive_summary",
    "summarize",
    "transcript",
    "user_facts",
    "with_facts",
]

Summarizer: TypeAlias = Callable[[Sequence[ChatMessage]], Awaitable[str | None]]
"""A function that writes the summary of ``messages`` (oldest first; an earlier summary, if any,
comes first as a system message). ``None`` or blank means it has none: the fallback is used."""

SUMMARY_HEADER = "Summary of the earlier conversation:"
"""The first line of every summary's text, so a model (and a reader) knows what it is."""
_FACTS_HEADER = "The user said:"
_FACT_LINE = re.compile(r'^- "(.*)"$')
_SENTENCE_END = re.compile(r"(?<=[.!;])\s+|\n+")
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|my|mine|we|we're|our|call me)\b", re.IGNORECASE)
"""Words of a statement about oneself ("me" and "us" alone are left out: "tell me about X" is a
request, not a fact)."""
_CAPITALIZED = re.compile(r"(?<!^)\b[A-Z][\w'-]+")
_DIGITS = re.compile(r"\d")
_WORD = re.compile(r"[\w'-]+")
_PRONOUN_CAPS = {"I", "I'm", "I've", "I'd", "I'll"}

_SYSTEM_PROMPT = (
    "You write short summaries of conversations. Keep every name, place, number and date the "
    "user gave. Write the summary only, in plain sentences, about the user in the third person."
)

_MODEL_REPLY_CAP = 128
"""The most tokens a model may write for a summary's own text. Given more room, the 0.5B model
writes long lists of what was said, and a compaction's time is mostly that writing (measured in
bench/compaction.py); the user's facts are kept apart (quoted), so a short text loses none."""

logger = logging.getLogger("threadline.compaction")


def _is_fact(sentence: str) -> bool:
    """A first-person statement that names something (a capitalized word, a number)."""
    if sentence.endswith("?") or not _FIRST_PERSON.search(sentence):
        return False
    names = [w for w in _CAPITALIZED.findall(sentence) if w not in _PRONOUN_CAPS]
    return bool(names) or bool(_DIGITS.search(sentence))


def _quoted_facts(summary: ChatMessage) -> list[str]:
    lines = summary.text.splitlines()
    if _FACTS_HEADER not in lines:
        return []
    start = lines.index(_FACTS_HEADER) + 1
    return [m.group(1) for line in lines[start:] if (m := _FACT_LINE.match(line))]


def user_facts(messages: Sequence[ChatMessage]) -> list[str]:
    """The user's statements about themselves, oldest first, each once.

    Taken from the user's messages, and from the facts an earlier summary among ``messages``
    quoted (so they outlive any number of compactions).
    """
    facts: list[str] = []
    for message in messages:
        if message.role == Role.SYSTEM and summary_mark(message) is not None:
            found = _quoted_facts(message)
        elif message.role == Role.USER:
            found = [s.strip() for s in _SENTENCE_END.split(message.text) if _is_fact(s.strip())]
        else:
            continue
        facts.extend(f.replace('"', "'") for f in found if f)
    return list(dict.fromkeys(facts))


def _details(fact: str) -> set[str]:
    words = {w for w in _CAPITALIZED.findall(fact) if w not in _PRONOUN_CAPS}
    return words | {w for w in _WORD.findall(fact) if _DIGITS.search(w)}


def with_facts(text: str, facts: Sequence[str]) -> str:
    """``text`` under the summary header, with the facts it leaves out quoted after it."""
    lowered = text.lower()
    missing = [f for f in facts if any(d.lower() not in lowered for d in _details(f))]
    parts = [SUMMARY_HEADER, text.strip()]
    if missing:
        parts += [_FACTS_HEADER, *(f'- "{f}"' for f in missing)]
    return "\n".join(p for p in parts if p)


def transcript(messages: Sequence[ChatMessage]) -> str:
    """``messages`` as plain lines (``User: ...``), tool calls and results named briefly."""
    lines: list[str] = []
    for message in messages:
        if summary_mark(message) is not None:
            lines.append(f"Earlier summary: {message.text}")
            continue
        who = message.author_name or message.role.value.capitalize()
        text = message.text
        for content in message.contents:
            if type(content) is FunctionCallContent:
                text += f" [called {content.name}({content.arguments})]"
            elif type(content) is FunctionResultContent:
                shown = content.exception or str(content.result)
                text += f" [result: {shown[:200]}]"
        if text.strip():
            lines.append(f"{who}: {text.strip()}")
    return "\n".join(lines)


def extractive_summary(
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int,
    count_tokens: TokenCounter,
    facts: Sequence[str] | None = None,
) -> str | None:
    """A summary made without a model: the user's facts, then what the user talked about.

    The facts come first and are kept whole, earliest first, as many as fit ``max_tokens``; the
    opening words of the user's other messages fill what room is left. ``None`` when not even the
    header and one fact fit. ``facts``: the user's facts to keep, when the caller found them
    (default: :func:`user_facts` of ``messages``).
    """
    facts = user_facts(messages) if facts is None else facts
    lines = [SUMMARY_HEADER]

    def fits(candidate: list[str]) -> bool:
        return count_tokens(ChatMessage(Role.SYSTEM, "\n".join(candidate))) <= max_tokens

    kept: list[str] = []
    for fact in facts:
        if not fits([*lines, _FACTS_HEADER, *kept, f'- "{fact}"']):
            break
        kept.append(f'- "{fact}"')
    if kept:
        lines += [_FACTS_HEADER, *kept]
    topics = [
        " ".join(m.text.split()[:12])
        for m in messages
        if m.role == Role.USER
        and m.text.strip()
        and not any(_is_fact(s.strip()) for s in _SENTENCE_END.split(m.text))
    ]
    asked: list[str] = []
    for topic in reversed(topics):  # the newest topics matter most to what follows
        if not fits([*lines, "The user also asked about:", *asked, f"- {topic}"]):
            break
        asked.append(f"- {topic}")
    if asked:
        lines += ["The user also asked about:", *reversed(asked)]
    if len(lines) == 1 or (facts and not kept):
        return None
    return "\n".join(lines)


async def _model_text(
    writer: ChatClient | Summarizer, messages: Sequence[ChatMessage], max_tokens: int
) -> str | None:
    if not isinstance(writer, ChatClient):
        return await writer(messages)
    words = max(20, max_tokens // 2)
    request = [
        ChatMessage(Role.SYSTEM, _SYSTEM_PROMPT),
        ChatMessage(
            Role.USER,
            f"Summarize this conversation in at most {words} words:\n\n{transcript(messages)}",
        ),
    ]
    options = ChatOptions(max_tokens=max_tokens, temperature=0.0)
    response = await writer.get_response(request, options=options)
    return response.text


async def summarize(
    messages: Sequence[ChatMessage],
    *,
    writer: ChatClient | Summarizer,
    max_tokens: int,
    count_tokens: TokenCounter,
    facts: Sequence[str] | None = None,
) -> tuple[str, str] | None:
    """The text of a summary of ``messages`` no longer than ``max_tokens``, and how it was made.

    Tries ``writer`` (a client or a summarizer function), keeps the user's facts in its text,
    and falls back to :func:`extractive_summary` when the writer raises, returns nothing, or its
    text (facts added) is over ``max_tokens``. ``None``: no summary that short could be made.

    ``facts``: the user's facts the summary must keep (default: :func:`user_facts` of
    ``messages``). A compaction passes those of every message the summary will stand for, its
    chain's included, because an earlier summary may hold a fact only in a model's words, which
    the next model may drop.
    """
    method = "model" if isinstance(writer, ChatClient) else "summarizer"
    facts = user_facts(messages) if facts is None else facts
    quoted = "\n".join([_FACTS_HEADER, *(f'- "{f}"' for f in facts)]) if facts else ""
    room = max(
        32, min(_MODEL_REPLY_CAP, max_tokens - count_tokens(ChatMessage(Role.SYSTEM, quoted)))
    )
    reason: str
    try:
        text = await _model_text(writer, messages, room)
    except Exception as exc:  # any failure of the writer: the fallback keeps the turn going
        reason = f"it raised {exc!r}"
    else:
        if text is None or not text.strip():
            reason = "it returned nothing"
        else:
            full = with_facts(text, facts)
            if count_tokens(ChatMessage(Role.SYSTEM, full)) <= max_tokens:
                return full, method
            reason = f"its summary is longer than the {max_tokens} tokens allowed"
    logger.warning("compaction: using an extractive summary, as the %s failed: %s", method, reason)
    extracted = extractive_summary(
        messages, max_tokens=max_tokens, count_tokens=count_tokens, facts=facts
    )
    return None if extracted is None else (extracted, "extractive")
