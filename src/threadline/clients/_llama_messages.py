"""Prompts for llama.cpp: our own ChatML/Qwen template, and reading tool calls back out.

Why our own template: the GGUF files come from an unknown publisher, and a GGUF's Jinja chat
template is code we would run on every prompt; a different template also silently changes how
tools and results reach the model. So for ChatML models (Qwen2.5, SmolLM2, Hermes, ...) the prompt
is written here, following Qwen2.5's published template: tools listed in the system message inside
``<tools></tools>``, calls as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, results
as ``<tool_response>`` blocks in a user turn.

Why free generation and parsing rather than a grammar: Qwen2.5 was trained to write exactly that
format, so the model itself decides between answering and calling, and the reply streams as plain
text until ``<tool_call>`` appears. llama-cpp-python's ``chatml-function-calling`` grammar (0.3.x)
instead lost text answers under ``tool_choice="auto"``. When a call is required the prompt is
prefilled with ``<tool_call>`` (and the function's name when there is only one), which forces the
format without a grammar. Whatever cannot be parsed as a call is returned as text, so an answer
is never lost.

Models whose template is not ChatML are given their own template through llama-cpp-python, for
plain chat only (see ``LocalChatClient``); ``to_llama_message`` makes the messages for that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, FunctionResultContent, TextContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "DEFAULT_SYSTEM",
    "END",
    "ReplyParser",
    "call_names",
    "generation_prompt",
    "render_message",
    "required_call_prefill",
    "to_llama_message",
    "tools_section",
]

LlamaMessage = dict[str, Any]
"""One OpenAI-style message dict as ``Llama.create_chat_completion`` takes it."""

DEFAULT_SYSTEM = "You are a helpful assistant."
END = "<|im_end|>"
OPEN_CALL = "<tool_call>"
CLOSE_CALL = "</tool_call>"


def call_names(messages: Iterable[ChatMessage]) -> dict[str, str]:
    """``call_id -> function name`` for every call in ``messages``, to label results."""
    return {
        c.call_id: c.name for m in messages for c in m.contents if type(c) is FunctionCallContent
    }


def _arguments(call: FunctionCallContent) -> Any:
    """The arguments as a JSON value (Qwen writes an object), or the raw text when not JSON."""
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments


def _call_text(call: FunctionCallContent) -> str:
    body = json.dumps({"name": call.name, "arguments": _arguments(call)}, ensure_ascii=False)
    return f"{OPEN_CALL}\n{body}\n{CLOSE_CALL}"


def _result_text(result: FunctionResultContent, names: Mapping[str, str]) -> str:
    name = names.get(result.call_id, "the tool")
    if result.exception is not None:
        body = f"{name} failed: {result.exception}"
    else:
        value = result.result
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        body = f"{name} returned: {text}"
    return f"<tool_response>\n{body}\n</tool_response>"


AFTER_RESULTS = ("That was the tool result.", "Those were the tool results.")
"""Said after tool results, before ``Now answer my question in plain words.``

Without it Qwen2.5-Coder-0.5B mostly answers a tool result by repeating its call (0 of 5 seeds
gave a text answer); with it, 5 of 5 did. Naming the function in the result helps the same way.
"""


def tools_section(tools: Sequence[FunctionTool]) -> str:
    """What Qwen's template appends to the system message when tools are offered."""
    listed = "\n".join(
        json.dumps(
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            },
            ensure_ascii=False,
        )
        for t in tools
    )
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        f"{listed}\n</tools>\n\nFor each function call, return a json object with function name "
        "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def render_message(
    message: ChatMessage, *, tools: str = "", names: Mapping[str, str] | None = None
) -> str:
    """One message as a ChatML block ('' when nothing of it can be sent).

    ``tools`` (from :func:`tools_section`) is appended to a system message; ``names`` (from
    :func:`call_names`) label tool results. Contents the template has no form for (images,
    URIs, usage, errors) are left out.
    """
    texts = [c.text for c in message.contents if type(c) is TextContent]
    if message.role == Role.TOOL:
        results = [
            _result_text(c, names or {})
            for c in message.contents
            if type(c) is FunctionResultContent
        ]
        if results:
            after = AFTER_RESULTS[len(results) > 1]
            results.append(f"{after} Now answer my question in plain words.")
        body = "\n".join([*texts, *results])
        return f"<|im_start|>user\n{body}{END}\n" if body else ""
    if message.role == Role.ASSISTANT:
        texts += [_call_text(c) for c in message.contents if type(c) is FunctionCallContent]
    body = "\n".join(texts)
    if message.role == Role.SYSTEM:
        body += tools
    if not body:
        return ""
    return f"<|im_start|>{message.role.value}\n{body}{END}\n"


def generation_prompt(prefill: str = "") -> str:
    """The start of the assistant's turn, with text the reply must begin with."""
    return f"<|im_start|>assistant\n{prefill}"


def required_call_prefill(tools: Sequence[FunctionTool]) -> str:
    """The start of a forced call: ``<tool_call>``, and the name when only one tool is offered."""
    if len(tools) == 1:
        return f'{OPEN_CALL}\n{{"name": {json.dumps(tools[0].name)}, "arguments": '
    return f"{OPEN_CALL}\n"


class ReplyParser:
    """Splits a streamed reply into text to show now and the tool calls found at the end.

    Text streams through as it comes, except a tail that could be the start of ``<tool_call>``,
    which is held back until the next piece decides it. From the first ``<tool_call>`` on, the
    rest is collected and parsed when the reply ends.

    Small models do not always use the tags: Qwen2.5-Coder-0.5B often writes the call's JSON
    bare or in a json code fence. So when tools are offered, a reply that starts like JSON (``{``
    or a fence tagged ``json`` or not tagged) is held until it ends, and taken as calls if it is
    an object (or list of objects) naming an offered tool; otherwise it is shown as the text it is.
    """

    def __init__(self, prefill: str = "", tool_names: Iterable[str] = ()) -> None:
        self._names = frozenset(tool_names)
        self._held: str = ""
        self._calls: str | None = None
        self._bare = False
        """Holding a reply that may be a bare JSON call, until it ends."""
        self._started = not self._names
        """Past the start of the reply (where a bare call would begin), or no tools offered."""
        if prefill:
            self.feed(prefill)

    def _starts_like_json(self, buffer: str) -> bool | None:
        """True/False once the start of the reply decides it; None while it cannot tell yet."""
        head = buffer.lstrip()
        if not head:
            return None
        if head.startswith("{"):
            return True
        if head.startswith("```") or "```".startswith(head):
            line, newline, _ = head.partition("\n")
            if not newline:
                return None
            return line[3:].strip().lower() in ("", "json")
        return False

    def feed(self, text: str) -> str:
        """Take the next piece of the reply; returns the text that can be shown now."""
        if self._calls is not None:
            self._calls += text
            return ""
        buffer = self._held + text
        if self._bare:
            self._held = buffer
            return ""
        start = buffer.find(OPEN_CALL)
        if start >= 0:
            self._held = ""
            self._calls = buffer[start:]
            return buffer[:start]
        if not self._started:
            decided = self._starts_like_json(buffer)
            if decided is None:
                self._held = buffer
                return ""
            self._started = True
            if decided:
                self._bare = True
                self._held = buffer
                return ""
        keep = 0
        for size in range(min(len(OPEN_CALL) - 1, len(buffer)), 0, -1):
            if OPEN_CALL.startswith(buffer[-size:]):
                keep = size
                break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def finish(self, fallback_id: str) -> tuple[str, list[FunctionCallContent]]:
        """The text still held back, and the calls (all of them parse, or they become text)."""
        if self._calls is None:
            if self._bare or not self._started:
                calls = self._bare_calls(self._held, fallback_id)
                if calls:
                    return "", calls
            return self._held, []
        calls: list[FunctionCallContent] = []
        chunks = re.split(re.escape(OPEN_CALL), self._calls)[1:]
        for index, chunk in enumerate(chunks):
            body = chunk.split(CLOSE_CALL, 1)[0].strip()
            call = _parse_call(body, f"{fallback_id}_{index}")
            if call is None:
                return self._calls, []  # not a call after all: keep every character as text
            calls.append(call)
        return "", calls

    def _bare_calls(self, text: str, fallback_id: str) -> list[FunctionCallContent]:
        """Calls from JSON objects one after another (or a list); a cut-off last one is dropped.

        The model sometimes repeats a call, or runs into the token limit mid-way through a
        second one: identical calls are kept once, and an unfinished object at the end is
        ignored when complete calls came before it.
        """
        body = text.strip()
        if body.startswith("```"):
            body = body.removeprefix("```").removesuffix("```").strip()
            body = (body[4:] if body.lower().startswith("json") else body).strip()
        decoder = json.JSONDecoder()
        items: list[Any] = []
        position = 0
        while position < len(body):
            try:
                value, position = decoder.raw_decode(body, position)
            except ValueError:
                if not items or not body[position:].startswith("{"):
                    return []
                break
            items += cast("list[Any]", value) if isinstance(value, list) else [value]
            while position < len(body) and body[position].isspace():
                position += 1
        calls: list[FunctionCallContent] = []
        seen: set[tuple[str, str]] = set()
        for item in items:
            call = _parse_call(json.dumps(item), f"{fallback_id}_{len(calls)}")
            if call is None or call.name not in self._names:
                return []
            if (call.name, call.arguments) not in seen:
                seen.add((call.name, call.arguments))
                calls.append(call)
        return calls


def _parse_call(body: str, call_id: str) -> FunctionCallContent | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    data: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    name = data.get("name")
    arguments = data.get("arguments", {})
    if not isinstance(name, str) or not name:
        return None
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return FunctionCallContent(call_id=call_id, name=name, arguments=text)


def to_llama_message(message: ChatMessage, names: Mapping[str, str]) -> LlamaMessage | None:
    """The dict for one message, for a model's own (non-ChatML) template; None when empty.

    Such templates have no form for tools, so calls and results are written as text.
    """
    texts = [c.text for c in message.contents if type(c) is TextContent]
    if message.role == Role.TOOL:
        for result in message.contents:
            if type(result) is FunctionResultContent:
                texts.append(_result_text(result, names))
        return {"role": "user", "content": "\n\n".join(texts)} if texts else None
    texts += [_call_text(c) for c in message.contents if type(c) is FunctionCallContent]
    if not texts:
        return None
    return {"role": message.role.value, "content": "\n".join(texts)}
