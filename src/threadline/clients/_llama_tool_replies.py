"""What a small model's tool replies are cleaned of before anyone sees them (issue 21, item 6).

The default 0.5B model, offered tools, sometimes answers with JSON that is not a usable call: a
call of a tool that does not exist (``{"name": "Buddy", "arguments": ...}`` for "names for a
cat"), or its copy of a tool's schema. Shown as the answer, that is the raw JSON the issue saw;
:func:`looks_like_call` recognises it, and the client then answers again without tools. And a
real call sometimes carries schema words as arguments (``"required": ["timezone"]`` beside
``"timezone"``), which fail the tool: :func:`keep_known_arguments` drops the arguments a tool's
schema does not name (only for tools that list their parameters). Finally, the model calls tools
nobody asked for ("What is 2 + 2?" -> ``get_weather({"city": "Paris"})``): :func:`grounded_calls`
is false when no argument of the calls was said by the user, and the client then answers again
without tools too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent

__all__ = ["grounded_calls", "keep_known_arguments", "looks_like_call"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_WORD = re.compile(r"[^\W_]+")
_CALL_KEYS = frozenset({"name", "arguments", "parameters", "properties", "function"})


def looks_like_call(text: str) -> bool:
    """True when ``text`` is, as a whole, tool-call or tool-schema JSON (fenced or tagged)."""
    body = _FENCE.sub("", text.strip()).strip()
    if body.startswith("<tool_call>"):
        return True
    try:
        value: Any = json.loads(body)
    except ValueError:
        return False
    items: list[Any] = cast(list[Any], value) if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(item, dict) and bool(_CALL_KEYS & set(cast(dict[str, Any], item)))
        for item in items
    )


def keep_known_arguments(
    calls: Sequence[FunctionCallContent], tools: Sequence[FunctionTool]
) -> list[FunctionCallContent]:
    """``calls`` without the arguments their tool's schema does not name.

    A tool whose schema lists no properties, or allows others, keeps every argument; so does an
    argument text that is not a JSON object (the tool reports that error itself).
    """
    known: dict[str, frozenset[str]] = {}
    for tool in tools:
        schema: Mapping[str, Any] = tool.parameters
        properties = schema.get("properties")
        if (
            isinstance(properties, Mapping)
            and properties
            and not schema.get("additionalProperties", False)
        ):
            known[tool.name] = frozenset(str(k) for k in cast(Mapping[str, Any], properties))
    out: list[FunctionCallContent] = []
    for call in calls:
        names = known.get(call.name)
        try:
            arguments: Any = json.loads(call.arguments) if names else None
        except ValueError:
            arguments = None
        if names and isinstance(arguments, dict):
            given = cast(dict[str, Any], arguments)
            kept = {k: v for k, v in given.items() if k in names}
            if len(kept) != len(given):
                call = replace(call, arguments=json.dumps(kept, ensure_ascii=False))
        out.append(call)
    return out


def _values(value: Any) -> list[str]:
    """The strings and numbers inside an argument value, as text."""
    if isinstance(value, bool):
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, dict):
        return [t for v in cast(dict[str, Any], value).values() for t in _values(v)]
    if isinstance(value, list):
        return [t for v in cast(list[Any], value) for t in _values(v)]
    return []


def grounded_calls(calls: Sequence[FunctionCallContent], user_texts: Sequence[str]) -> bool:
    """True unless the calls have arguments and not one word of them was said by the user.

    ``user_texts`` are the request's user messages (history and background included), so a city
    the user named three turns ago still grounds a call. Calls without arguments always pass.
    """
    said = {w for text in user_texts for w in _WORD.findall(text.lower())}
    words: set[str] = set()
    for call in calls:
        try:
            arguments: Any = json.loads(call.arguments)
        except ValueError:
            return True  # not ours to judge: the tool reports the error
        for text in _values(arguments):
            words.update(_WORD.findall(text.lower()))
    return not words or bool(words & said)
