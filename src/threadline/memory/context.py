"""``Context``: what a context provider adds to one model call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.tools import FunctionTool, as_tool
from threadline.types.messages import ChatMessage

__all__ = ["Context", "merge_contexts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Instructions, messages and tools for one model call only; none of it is stored in the thread.

    Instructions are appended to the agent's system message, messages are placed right before the
    new input, and tools are callable by the model for that run. Tools take the same forms as the
    agent's: plain functions (described from their hints and docstrings) or ``FunctionTool`` s.
    """

    instructions: str | None = None
    messages: Sequence[ChatMessage] = ()
    tools: Sequence[FunctionTool] = ()

    def __init__(
        self,
        instructions: str | None = None,
        messages: Sequence[ChatMessage] | None = None,
        tools: Sequence[FunctionTool | Callable[..., Any]] | None = None,
    ) -> None:
        object.__setattr__(self, "instructions", instructions)
        object.__setattr__(self, "messages", tuple(messages or ()))
        object.__setattr__(self, "tools", tuple(as_tool(t) for t in tools or ()))


def merge_contexts(contexts: Sequence[Context]) -> Context:
    """Compose several providers' contexts in order."""
    if len(contexts) == 1:
        return contexts[0]
    instructions = [c.instructions for c in contexts if c.instructions]
    return Context(
        instructions="\n".join(instructions) if instructions else None,
        messages=[m for c in contexts for m in c.messages],
        tools=[t for c in contexts for t in c.tools],
    )
