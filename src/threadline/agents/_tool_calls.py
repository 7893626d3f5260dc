"""Running the function calls a model asked for.

A failing tool never crashes the run: its error goes back to the model as the call's result, so the
model can correct itself or tell the user. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from threadline.exceptions import ThreadlineError
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, FunctionResultContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["function_calls", "run_function_calls"]


def function_calls(messages: Sequence[ChatMessage]) -> list[FunctionCallContent]:
    """The function calls in ``messages``, in order."""
    return [c for m in messages for c in m.contents if type(c) is FunctionCallContent]


async def _run_one(
    call: FunctionCallContent, tools: Mapping[str, FunctionTool]
) -> FunctionResultContent:
    tool = tools.get(call.name)
    if tool is None:
        available = ", ".join(sorted(tools)) or "none"
        return FunctionResultContent(
            call_id=call.call_id,
            exception=f"unknown tool {call.name!r}; available tools: {available}",
        )
    try:
        result = await tool.invoke(call.parse_arguments())
    except ThreadlineError as exc:  # bad arguments: the model can fix those
        return FunctionResultContent(call_id=call.call_id, exception=str(exc))
    except Exception as exc:  # the tool itself failed
        return FunctionResultContent(
            call_id=call.call_id,
            exception=f"tool {call.name!r} raised {type(exc).__name__}: {exc}",
        )
    return FunctionResultContent(call_id=call.call_id, result=result)


async def run_function_calls(
    calls: Sequence[FunctionCallContent], tools: Mapping[str, FunctionTool]
) -> ChatMessage:
    """Run the calls concurrently; return one tool message with their results in call order."""
    if len(calls) == 1:
        results = [await _run_one(calls[0], tools)]
    else:
        results = await asyncio.gather(*(_run_one(c, tools) for c in calls))
    return ChatMessage(Role.TOOL, contents=results)
