"""Thread summaries: by a chat client when one is given, else extractive (no model at all)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from threadline.memory._text import excerpt, tokens
from threadline.memory.records import MemoryRecord
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.clients.base import ChatClient

__all__ = ["SUMMARY_CHARS", "extractive_summary", "model_summary"]

logger = logging.getLogger("threadline.memory")

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PROMPT = (
    "Summarize the conversation below in at most five sentences for a memory that will be "
    "searched later: keep names, facts about the user, decisions, dates and open questions. "
    "Write plain text, no preamble."
)
SUMMARY_CHARS = 2_000
"""The longest summary a summarizer's answer is cut to. Five sentences fit several times over;
a model that rambles (or repeats itself until its token limit) must not produce a memory longer
than a store accepts (32,000 characters by default), which would fail saving the thread."""


def extractive_summary(turns: Sequence[MemoryRecord], *, limit: int = 800) -> tuple[str, list[str]]:
    """The user's most informative sentences, in order, and the ids of the messages they came from.

    Sentences are scored by how many distinct content words they bring that earlier picks did not,
    so the summary covers the conversation's topics rather than repeating one.
    """
    candidates: list[tuple[str, str]] = []
    for record in turns:
        if record.metadata.get("role") != Role.USER.value:
            continue
        own = str(record.metadata.get("content", ""))
        for sentence in _SENTENCE.split(own):
            if len(tokens(sentence)) >= 2:
                candidates.append((sentence.strip(), record.message_ids[-1]))
    seen: set[str] = set()
    picked: list[int] = []
    used = 0
    while used < limit:
        best, best_gain = -1, 0
        for index, (sentence, _) in enumerate(candidates):
            if index in picked:
                continue
            gain = len(set(tokens(sentence)) - seen)
            if gain > best_gain:
                best, best_gain = index, gain
        if best < 0:
            break
        sentence = excerpt(candidates[best][0], 240)
        if used + len(sentence) > limit and picked:
            break
        picked.append(best)
        seen.update(tokens(candidates[best][0]))
        used += len(sentence) + 1
    picked.sort()
    text = " ".join(excerpt(candidates[i][0], 240) for i in picked)
    ids = list(dict.fromkeys(candidates[i][1] for i in picked))
    return text, ids


async def model_summary(client: ChatClient, turns: Sequence[MemoryRecord]) -> str | None:
    """A summary written by ``client``, at most ``SUMMARY_CHARS`` long (cut at a word).

    ``None`` (and a warning) when the call fails or is empty.
    """
    transcript = "\n".join(
        f"{r.metadata.get('role', 'user')}: {excerpt(str(r.metadata.get('content', '')), 1000)}"
        for r in turns
    )
    messages = [ChatMessage(Role.SYSTEM, _PROMPT), ChatMessage(Role.USER, transcript)]
    try:
        response = await client.get_response(messages, options={"temperature": 0.0})
    except Exception as exc:  # a failed summary must not fail the thread's checkpoint
        logger.warning("conversation summary failed (%s); using an extractive one", exc)
        return None
    text = " ".join(m.text for m in response.messages).strip()
    return excerpt(text, SUMMARY_CHARS) or None
