"""History reducers: choose which part of a long thread is sent to a model with a small window.

Reducing changes only the request. The thread's store keeps the full history, so a later call with
a bigger window (or a stronger model) sees everything again. A pure function of messages, so it
sits below both the clients (a local model reduces its prompt) and the threads.

The one rule that makes a reduced history valid for every chat API: an assistant message that calls
functions and the tool message carrying their results are kept or dropped together. Sending a result
without its call (or a call without its result) is rejected by most services and confuses the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from threadline.types.contents import (
    CompactionContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    content_to_dict,
)
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "TokenBudgetReducer",
    "TokenCounter",
    "estimate_tokens",
    "group_tool_exchanges",
    "reduce_to_token_budget",
]

TokenCounter: TypeAlias = Callable[[ChatMessage], int]
"""Counts the tokens one message costs, framing included: the one counter type of threadline.

Reducers call it per message of a request; stores call it once, when they write a message, and
keep the count beside it (counts are never recomputed: changing a store's counter affects
messages written afterwards only). Pass a real tokenizer (e.g. ``lambda m:
len(enc.encode(m.text)) + 4``) when budgets must match a model exactly.
"""

_MESSAGE_OVERHEAD = 4
"""Tokens a chat format spends on a message's framing (role, separators), as OpenAI documents."""


def estimate_tokens(message: ChatMessage) -> int:
    """The default :data:`TokenCounter`: about four characters per token, plus framing.

    Cheap and dependency-free, and close enough for budgeting English text; it overestimates
    code and data slightly, which errs on the side of fitting the model's window. Non-text
    contents are counted by the length of their JSON form, except a summary's
    :class:`CompactionContent` (the ids it replaces), which is never sent to a model.
    """
    plain = message.plain_text
    if plain is not None:  # most messages: no need to look at parts
        return _MESSAGE_OVERHEAD + (len(plain) + 3) // 4
    chars = 0
    for content in message.contents:
        if type(content) is TextContent:
            chars += len(content.text)
        elif type(content) is CompactionContent:
            continue
        else:
            # default=str: counting must not fail where encoding would explain the problem
            chars += len(json.dumps(content_to_dict(content), ensure_ascii=False, default=str))
    return _MESSAGE_OVERHEAD + (chars + 3) // 4


def _calls(message: ChatMessage) -> set[str]:
    return {c.call_id for c in message.contents if type(c) is FunctionCallContent}


def _results(message: ChatMessage) -> set[str]:
    return {c.call_id for c in message.contents if type(c) is FunctionResultContent}


def group_tool_exchanges(messages: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """Split ``messages`` into units that must be kept or dropped whole.

    A unit is one message, except that a message carrying function results joins the unit of the
    message that made those calls (with anything between them), so a call and its result never
    part. Results whose call is not in ``messages`` stay alone; a reducer then drops or keeps them
    like any message.
    """
    units: list[list[ChatMessage]] = []
    open_calls: dict[str, int] = {}
    """call_id -> index of the unit holding the call, for calls whose result has not come yet."""
    for message in messages:
        results = _results(message)
        owners = [open_calls[cid] for cid in results if cid in open_calls]
        if owners:
            # Merge everything from the oldest call this message answers up to here into one unit.
            first = min(owners)
            merged = [m for unit in units[first:] for m in unit]
            del units[first:]
            units.append([*merged, message])
            for cid in results:
                open_calls.pop(cid, None)
            for cid, index in list(open_calls.items()):
                if index >= first:
                    open_calls[cid] = first
        else:
            units.append([message])
        for cid in _calls(message):
            open_calls[cid] = len(units) - 1
    return units


def reduce_to_token_budget(
    messages: Sequence[ChatMessage], *, budget: int, count_tokens: TokenCounter
) -> list[ChatMessage]:
    """Keep the leading system messages and the newest messages that fit in ``budget`` tokens.

    The kept messages are a contiguous tail of the conversation (nothing in the middle is skipped
    to squeeze an older message in), and tool calls stay with their results (see
    :func:`group_tool_exchanges`). The system messages are always kept, even when they alone
    exceed the budget: instructions are not the reducer's to drop.

    The result may hold no message after the system ones when the newest unit alone does not fit;
    callers that need the newest message (a model request does) should check for it.

    Args:
        messages: the conversation, oldest first.
        budget: tokens available for the messages.
        count_tokens: the cost of one message; called once per message at most.
    """
    head = 0
    while head < len(messages) and messages[head].role == Role.SYSTEM:
        head += 1
    system = list(messages[:head])
    remaining = budget - sum(count_tokens(m) for m in system)
    kept: list[list[ChatMessage]] = []
    for unit in reversed(group_tool_exchanges(messages[head:])):
        cost = sum(count_tokens(m) for m in unit)
        if cost > remaining:
            break
        remaining -= cost
        kept.append(unit)
    return [*system, *(m for unit in reversed(kept) for m in unit)]


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenBudgetReducer:
    """:func:`reduce_to_token_budget` with its settings bound, for code that takes a reducer."""

    budget: int
    """Tokens available for the messages sent."""
    count_tokens: TokenCounter
    """The cost of one message, e.g. from the model's own tokenizer."""

    def __call__(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The messages to send."""
        return reduce_to_token_budget(messages, budget=self.budget, count_tokens=self.count_tokens)
