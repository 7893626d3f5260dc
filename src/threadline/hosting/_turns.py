"""Parts shared by the API families: request tools and options, ids, item listing, usage."""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Sequence
from typing import Any, cast

from threadline.agents.chat_agent import ChatAgent
from threadline.clients.base import RunOptions
from threadline.exceptions import MessageFormatError
from threadline.hosting._request import is_decimal, optional, optional_list
from threadline.hosting._runner import client_tool
from threadline.hosting.errors import ApiError
from threadline.openai_wire import messages_to_items
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, FunctionResultContent, UsageDetails
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "MAX_USER_CHARS",
    "client_tools",
    "decode_messages",
    "new_id",
    "paginate",
    "require_calls_for_results",
    "request_user",
    "require_tool_results",
    "run_options",
    "sampling_number",
    "visible_output",
]


MAX_USER_CHARS = 256
"""The longest request ``user`` accepted: it names a memory owner, stored with every memory."""


def new_id(prefix: str) -> str:
    """A fresh object id with the API's prefix (``resp``, ``conv``, ``thread`` ...)."""
    return f"{prefix}_{os.urandom(12).hex()}"


def client_tools(body: dict[str, Any], *, nested: bool) -> list[FunctionTool]:
    """The function tools a request declares.

    ``nested``: the Chat Completions and Assistants form,
    ``{"type": "function", "function": {...}}``.
    """
    raw = optional_list(body, "tools")
    tools: list[FunctionTool] = []
    for i, entry in enumerate(cast(list[object], raw or [])):
        where = f"tools[{i}]"
        if not isinstance(entry, dict):
            raise ApiError.bad(f"Invalid '{where}': expected an object.", param=where)
        spec = cast(dict[str, Any], entry)
        if spec.get("type") != "function":
            raise ApiError.bad(
                f"Unsupported tool type {spec.get('type')!r} in '{where}': only function tools.",
                param=where,
            )
        if nested:
            fn = spec.get("function")
            if not isinstance(fn, dict):
                raise ApiError.bad(f"Missing '{where}.function'.", param=where)
            spec = cast(dict[str, Any], fn)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError.bad(f"Missing or invalid '{where}.name'.", param=f"{where}.name")
        description = spec.get("description") or ""
        parameters: object = spec.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(description, str) or not isinstance(parameters, dict):
            raise ApiError.bad(f"Invalid description or parameters in '{where}'.", param=where)
        tools.append(client_tool(name, description, cast(dict[str, Any], parameters)))
    return tools


def run_options(body: dict[str, Any], *, max_tokens_key: str) -> RunOptions:
    """Sampling options of a request, checked, in threadline's form."""
    options = RunOptions()
    temperature = sampling_number(body, "temperature", 2.0)
    if temperature is not None:
        options["temperature"] = temperature
    top_p = sampling_number(body, "top_p", 1.0)
    if top_p is not None:
        options["top_p"] = top_p
    max_tokens = optional(body, max_tokens_key, int)
    if max_tokens is not None:
        if max_tokens < 1:
            raise ApiError.bad(f"'{max_tokens_key}' must be at least 1.", param=max_tokens_key)
        options["max_tokens"] = max_tokens
    user = optional(body, "user", str)
    if user is not None:
        options["user"] = request_user(user)
    choice = body.get("tool_choice")
    if choice in ("auto", "none", "required"):
        options["tool_choice"] = choice
    return options


def request_user(user: str) -> str:
    """The request's ``user``, checked: at most ``MAX_USER_CHARS`` characters, no control ones.

    It becomes part of a memory owner id that every memory of that user carries, and the server
    keeps per-user state while that user's work runs: an unbounded one multiplied both.
    """
    if len(user) > MAX_USER_CHARS:
        raise ApiError.bad(
            f"Invalid 'user': {len(user):,} characters, over the limit of {MAX_USER_CHARS}.",
            param="user",
        )
    bad = next((c for c in user if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ApiError.bad(
            f"Invalid 'user': it contains the control character U+{ord(bad):04X}; send a "
            "printable identifier.",
            param="user",
        )
    return user


def sampling_number(body: dict[str, Any], key: str, highest: float) -> float | None:
    """``temperature`` or ``top_p``: a finite number from 0 to ``highest``, or absent.

    JSON parsers (Python's included) accept ``NaN`` and ``Infinity``, and ``1e999`` reads as
    infinity; none of them is a sampling setting a model can use.
    """
    value = optional(body, key, (int, float))
    if value is None:
        return None
    number = float(cast(float, value))
    if not math.isfinite(number) or not 0.0 <= number <= highest:
        raise ApiError.bad(
            f"Invalid '{key}': {value!r}; expected a number from 0 to {highest:g}.", param=key
        )
    return number


def require_tool_results(
    messages: Sequence[ChatMessage], param: str, *, agent: ChatAgent | None = None
) -> None:
    """400 when a function call in ``messages`` has no result, as the OpenAI APIs answer.

    A model shown a call without its result, followed by new text, answers a history no OpenAI
    service would accept; refusing here keeps every stored history one the APIs could produce.
    Calls to ``agent``'s own tools are exempt: the caller never sees them, so could never answer
    them (an agent stopped by its tool-iteration limit may leave one unanswered).
    """
    own = _tool_names(agent) if agent is not None else set[str]()
    answered = {c.call_id for m in messages for c in m.contents if type(c) is FunctionResultContent}
    for message in messages:
        for content in message.contents:
            if (
                type(content) is FunctionCallContent
                and content.call_id not in answered
                and content.name not in own
            ):
                raise ApiError.bad(
                    f"No tool output found for function call {content.call_id}: send its "
                    "result (a function_call_output item, or a tool message) with this request.",
                    param=param,
                )


def require_calls_for_results(
    history: Sequence[ChatMessage], new: Sequence[ChatMessage], param: str
) -> None:
    """400 when a tool result in ``new`` answers no pending call, as the OpenAI APIs answer.

    A result is pending-call-less when no function call with its id comes before it (in the
    stored ``history`` or earlier in ``new``), or when that call already has a result. Storing
    one would show the model an answer to a question never asked. Only ``new`` is checked: a
    history stored before this check keeps working.
    """
    pending: set[str] = set()
    for message in history:
        for content in message.contents:
            if type(content) is FunctionCallContent:
                pending.add(content.call_id)
            elif type(content) is FunctionResultContent:
                pending.discard(content.call_id)
    for message in new:
        for content in message.contents:
            if type(content) is FunctionCallContent:
                pending.add(content.call_id)
            elif type(content) is FunctionResultContent:
                if content.call_id not in pending:
                    raise ApiError.bad(
                        f"No pending function call found for the tool output with call id "
                        f"{content.call_id!r}: a tool output must answer an earlier function "
                        "call that has no output yet.",
                        param=param,
                    )
                pending.discard(content.call_id)


def _tool_names(agent: ChatAgent) -> set[str]:
    names: set[str] = set(agent.tools)  # the agent's tools by name
    return names


def decode_messages(convert: Any, value: object, param: str) -> list[ChatMessage]:
    """Run a wire-to-messages conversion, turning format errors into 400s."""
    try:
        return cast(list[ChatMessage], convert(value))
    except MessageFormatError as exc:
        raise ApiError.bad(f"Invalid '{param}': {exc}", param=param) from None
    except ValueError as exc:
        raise ApiError.bad(f"Invalid '{param}': {exc}", param=param) from None


def visible_output(
    produced: Sequence[ChatMessage], declared: Sequence[FunctionTool]
) -> list[ChatMessage]:
    """What a response shows: the assistant's messages and its calls to the caller's tools.

    Calls to the hosted agent's own tools and their results stay in the stored history only; the
    caller could do nothing with them.
    """
    names = {t.name for t in declared}
    out: list[ChatMessage] = []
    for message in produced:
        if message.role != Role.ASSISTANT:
            continue
        contents = [
            c for c in message.contents if type(c) is not FunctionCallContent or c.name in names
        ]
        if contents:
            out.append(
                ChatMessage(
                    message.role,
                    contents=contents,
                    author_name=message.author_name,
                    message_id=message.message_id,
                )
            )
    return out


def usage_json(usage: UsageDetails) -> dict[str, Any]:
    """Usage in the Responses format."""
    return {
        "input_tokens": usage.input_token_count or 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_token_count or 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_token_count or 0,
    }


def paginate(
    items: list[dict[str, Any]], query: dict[str, str], *, default_order: str = "desc"
) -> dict[str, Any]:
    """A list page in the API's cursor format (``limit``, ``order``, ``after``, ``before``)."""
    order = query.get("order", default_order)
    if order not in ("asc", "desc"):
        raise ApiError.bad("'order' must be 'asc' or 'desc'.", param="order")
    limit_raw = query.get("limit", "20")
    if not is_decimal(limit_raw) or not 1 <= int(limit_raw) <= 100:
        raise ApiError.bad("'limit' must be an integer between 1 and 100.", param="limit")
    limit = int(limit_raw)
    ordered = items if order == "asc" else list(reversed(items))
    for cursor_key in ("after", "before"):
        cursor = query.get(cursor_key)
        if cursor:
            ids = [i.get("id") for i in ordered]
            if cursor not in ids:
                raise ApiError.bad(
                    f"No item with id '{cursor}' for '{cursor_key}'.", param=cursor_key
                )
            at = ids.index(cursor)
            ordered = ordered[at + 1 :] if cursor_key == "after" else ordered[:at]
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > limit,
    }


def stored_items(stored: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """A thread's messages as conversation items (with ids)."""
    return messages_to_items(stored, output=True)
