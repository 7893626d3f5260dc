"""How recalled memories reach the model: in the system instructions, or as background.

``"instructions"`` appends them to the agent's system message, recalled again for every call:
whenever a different memory is recalled the start of the prompt changes, and a local model
(llama.cpp) evaluates the whole conversation again (issue 21: first token 10 to 20 times slower
with memory on). Two placements keep the prompt's start still:

* ``"messages"``: one background message right before the newest input. The system message and
  the history stay the same from turn to turn; the background itself is evaluated each turn
  (it is not stored in the thread), so a provider sends only what it has not shown before.
* ``"pinned"``: in the system instructions, but fixed for the whole thread: what was known at
  the thread's first call, never changed afterwards. What the user says during the thread is in
  its history anyway. Costs nothing after the first call.

The text says the notes are about *the person the model is talking to*, so a small model answers
"you", not "the user", does not take the notes for the question, and does not speak as that
person. Measured with the default 0.5B model (``bench/memory_use.py``: 8 questions, each with
its own facts and with five, 6 sampling seeds): replies in the user's voice ("My dog is Rex.") or
about them ("The user lives in Porto.") fell from 26 of 96 to 14 against the wording before
("Background from earlier conversations with you (the user)"), and 67 replies passed every check
instead of 61. What the small model still gets wrong is the facts' meaning (chicken for a
vegetarian, 12 of 96 either way): no wording changed that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from threadline.memory.context import Context
from threadline.tools import FunctionTool
from threadline.types.messages import ChatMessage, Role

__all__ = ["BACKGROUND", "ContextAs", "check_context_as", "memory_context"]

ContextAs = Literal["instructions", "messages", "pinned"]

BACKGROUND = (
    "Notes on the person you are talking to, from your earlier conversations with them. They "
    'are not part of this conversation: use them only where they help, call the person "you", '
    "and do not mention these notes."
)


def check_context_as(value: str) -> ContextAs:
    """``value`` when it is a known placement; ``ValueError`` naming the choices otherwise."""
    if value == "instructions":
        return "instructions"
    if value == "messages":
        return "messages"
    if value == "pinned":
        return "pinned"
    raise ValueError(f"context_as must be 'instructions', 'messages' or 'pinned', got {value!r}")


def memory_context(
    text: str, *, context_as: ContextAs, tools: Sequence[FunctionTool] = ()
) -> Context:
    """``text`` (an intro and its lines) placed as ``context_as`` says."""
    if context_as == "instructions":
        return Context(instructions=text, tools=tools)
    if context_as == "pinned":
        return Context(instructions=f"{BACKGROUND}\n{text}", tools=tools)
    return Context(messages=[ChatMessage(Role.USER, f"{BACKGROUND}\n{text}")], tools=tools)
