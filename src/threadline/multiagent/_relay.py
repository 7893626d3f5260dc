"""How one participant's messages are shown to the others (the ADR's propagation).

Another agent's message reaches a participant as a *user-role* message carrying the author's name,
never as that participant's own assistant message: a model must not believe it said what another
agent said. Function calls and results of other agents become text, because a function call sent
without its result (or a result without its call) makes a request the OpenAI APIs reject, and the
participant could not have answered another agent's call anyway. Message ids are kept, so the same
message can be recognised in every participant's thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from threadline.types.contents import (
    Content,
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["PropagationFilter", "relay", "skip_tool_messages"]

PropagationFilter = Callable[[ChatMessage], bool]
"""Decides, per participant, whether it sees another's message (the original, before conversion)."""


def skip_tool_messages(message: ChatMessage) -> bool:
    """A :data:`PropagationFilter` that hides other agents' tool calls and results."""
    if message.role == Role.TOOL:
        return False
    return not any(type(c) is FunctionCallContent for c in message.contents) or bool(message.text)


def _call_text(call: FunctionCallContent) -> str:
    return f"[called tool {call.name}({call.arguments})]"


def _result_text(result: FunctionResultContent, name: str) -> str:
    if result.exception is not None:
        return f"[tool {name} failed: {result.exception}]"
    return f"[tool {name} returned {json.dumps(result.result, ensure_ascii=False, default=str)}]"


def relay(
    messages: Sequence[ChatMessage],
    *,
    author: str | None,
    keep: PropagationFilter | None = None,
) -> list[ChatMessage]:
    """``messages`` (one turn of ``author``, or the user's input when ``None``) as others see them.

    User messages pass unchanged. Assistant and tool messages become user-role messages named
    after their author, with function calls and results written out as text; system messages and
    usage reports are dropped. ``keep`` filters the originals first.
    """
    names = {
        c.call_id: c.name for m in messages for c in m.contents if type(c) is FunctionCallContent
    }
    out: list[ChatMessage] = []
    for message in messages:
        if keep is not None and not keep(message):
            continue
        role = message.role
        if role == Role.SYSTEM:
            continue
        if role == Role.USER:
            out.append(message)
            continue
        plain = message.plain_text
        name = author or message.author_name
        if plain is not None:
            out.append(
                ChatMessage(Role.USER, plain, author_name=name, message_id=message.message_id)
            )
            continue
        parts: list[Content] = []
        for content in message.contents:
            if type(content) is TextContent:
                parts.append(content)
            elif type(content) is FunctionCallContent:
                parts.append(TextContent(_call_text(content)))
            elif type(content) is FunctionResultContent:
                tool = names.get(content.call_id, "tool")
                parts.append(TextContent(_result_text(content, tool)))
            elif type(content) is ErrorContent:
                parts.append(TextContent(f"[error: {content.message}]"))
            elif type(content) is DataContent or type(content) is UriContent:
                parts.append(content)
            # usage reports concern the author's bill, not the conversation
        if parts:
            out.append(
                ChatMessage(
                    Role.USER, contents=parts, author_name=name, message_id=message.message_id
                )
            )
    return out
