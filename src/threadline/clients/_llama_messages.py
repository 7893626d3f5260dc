"""Turning threadline messages into llama-cpp-python's OpenAI-style message dicts.

Kept apart from the client so the mapping can be read (and tested) without a model.

Chat templates know three roles. Function calls and results have no role of their own in most of
them (llama-cpp-python's ``chatml-function-calling`` template silently drops ``tool`` messages).
So when a request offers no tools, calls are written as text in the form that template uses
(``functions.<name>:`` and the arguments on the next line); results always go back as a user
message. Contents a template has no form for (images, URIs, usage, errors) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, FunctionResultContent, TextContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "ToolCallAccumulator",
    "call_names",
    "render_for_count",
    "to_llama_message",
    "tools_payload",
]

LlamaMessage = dict[str, Any]
"""One OpenAI-style message dict as ``Llama.create_chat_completion`` takes it."""


def call_names(messages: Iterable[ChatMessage]) -> dict[str, str]:
    """``call_id -> function name`` for every call in ``messages``, to label results."""
    return {
        c.call_id: c.name for m in messages for c in m.contents if type(c) is FunctionCallContent
    }


def _call_text(call: FunctionCallContent) -> str:
    return f"functions.{call.name}:\n{call.arguments}"


def _result_text(result: FunctionResultContent, names: Mapping[str, str]) -> str:
    name = names.get(result.call_id, result.call_id)
    if result.exception is not None:
        return f"functions.{name} failed:\n{result.exception}"
    value = result.result
    body = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"functions.{name} returned:\n{body}"


def to_llama_message(
    message: ChatMessage, names: Mapping[str, str], *, native_tool_calls: bool
) -> LlamaMessage | None:
    """The dict for one message, or ``None`` when nothing of it can be sent.

    Args:
        message: the message to convert.
        names: function names by call id, so results can say which function they answer.
        native_tool_calls: put assistant calls in ``tool_calls`` (for the function-calling
            template) rather than in the text (for the model's own template).
    """
    texts = [c.text for c in message.contents if type(c) is TextContent]
    if message.role == Role.TOOL:
        texts += [
            _result_text(c, names) for c in message.contents if type(c) is FunctionResultContent
        ]
        return {"role": "user", "content": "\n\n".join(texts)} if texts else None
    calls = [c for c in message.contents if type(c) is FunctionCallContent]
    if message.role == Role.ASSISTANT and calls:
        if native_tool_calls:
            return {
                "role": "assistant",
                "content": "\n".join(texts) or None,
                "tool_calls": [
                    {
                        "id": c.call_id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in calls
                ],
            }
        texts += [_call_text(c) for c in calls]
    if not texts:
        return None
    return {"role": message.role.value, "content": "\n".join(texts)}


def render_for_count(message: LlamaMessage) -> str:
    """The text a message roughly takes in a ChatML prompt, for counting its tokens.

    Templates differ by a few tokens per message; the client keeps a margin for that.
    """
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        function = call["function"]
        parts.append(f"functions.{function['name']}:\n{function['arguments']}")
    body = "\n".join(p for p in parts if p)
    return f"<|im_start|>{message['role']}\n{body}<|im_end|>\n"


def tools_payload(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    """The OpenAI ``tools`` list for ``create_chat_completion``."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters),
            },
        }
        for t in tools
    ]


@dataclass(slots=True)
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=lambda: [])


class ToolCallAccumulator:
    """Collects streamed ``tool_calls`` deltas so each call can be handed on whole."""

    def __init__(self) -> None:
        self._calls: dict[int, _PendingCall] = {}

    def add(self, deltas: Iterable[Mapping[str, Any]]) -> None:
        """Take the ``tool_calls`` of one stream chunk."""
        for delta in deltas:
            pending = self._calls.setdefault(int(delta.get("index", 0)), _PendingCall())
            pending.call_id = pending.call_id or str(delta.get("id") or "")
            function: Mapping[str, Any] = delta.get("function") or {}
            pending.name = pending.name or str(function.get("name") or "")
            if function.get("arguments"):
                pending.arguments.append(str(function["arguments"]))

    def calls(self, fallback_id: str) -> list[FunctionCallContent]:
        """The calls seen so far; a call sent without an id gets one made from ``fallback_id``."""
        return [
            FunctionCallContent(
                call_id=p.call_id or f"{fallback_id}_{index}",
                name=p.name,
                arguments="".join(p.arguments).strip() or "{}",
            )
            for index, p in sorted(self._calls.items())
        ]
