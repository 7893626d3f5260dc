"""How recalled memories reach the model: in the system instructions, or as background.

``"instructions"`` appends them to the agent's system message, which changes the start of every
prompt whenever a different memory is recalled. ``"messages"`` sends them as one context message
right before the newest input instead, so the system message and the history before it stay
the same from turn to turn and a local model (llama.cpp) reuses its evaluated prompt (issue 21:
first token 10 to 20 times slower with memories in the instructions). The message says the text
is background about the user it is talking to, so a small model answers "you", not "the user",
and does not treat it as the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from threadline.memory.context import Context
from threadline.tools import FunctionTool
from threadline.types.messages import ChatMessage, Role

__all__ = ["BACKGROUND", "ContextAs", "check_context_as", "memory_context"]

ContextAs = Literal["instructions", "messages"]

BACKGROUND = (
    "Background from earlier conversations with you (the user). It is not part of this "
    'conversation: use it only where it helps, speak to the user as "you", and do not '
    "mention this note."
)


def check_context_as(value: str) -> ContextAs:
    """``value`` when it is a known placement; ``ValueError`` naming the choices otherwise."""
    if value == "instructions":
        return "instructions"
    if value == "messages":
        return "messages"
    raise ValueError(f"context_as must be 'instructions' or 'messages', got {value!r}")


def memory_context(
    text: str, *, context_as: ContextAs, tools: Sequence[FunctionTool] = ()
) -> Context:
    """``text`` (an intro and its lines) placed as ``context_as`` says."""
    if context_as == "instructions":
        return Context(instructions=text, tools=tools)
    return Context(messages=[ChatMessage(Role.USER, f"{BACKGROUND}\n{text}")], tools=tools)
