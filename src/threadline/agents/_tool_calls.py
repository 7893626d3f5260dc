"""Running the function calls a model asked for.

A failing tool never crashes the run: its error goes back to the model as the call's result, so the
model can correct itself or tell the user. Only cancellation propagates.

Each call is traced as ``execute_tool {name}`` under the current span (the run's), with an error
status when the tool raised or was not found; the span is current while the tool runs, so a tool's
own spans nest under its call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from threadline import _tracing as tr
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
    span = tr.start_span(f"execute_tool {call.name}")
    if span is None:
        return await _invoke(call, tools)
    tr.set_if(
        span,
        {
            tr.OPERATION: "execute_tool",
            tr.TOOL_NAME: call.name,
            tr.TOOL_CALL_ID: call.call_id,
            tr.TOOL_TYPE: "function",
        },
    )
    found = tools.get(call.name)
    if found is not None and found.description:
        span.set_attribute(tr.TOOL_DESCRIPTION, found.description)
    capture = tr.capture_content()
    if capture:
        span.set_attribute(tr.TOOL_ARGUMENTS, call.arguments)
    try:
        with tr.activated(span):
            result = await _invoke(call, tools, span)
    except BaseException as exc:  # cancellation: the only way out of _invoke
        tr.end_error(span, exc)
        raise
    if found is None:  # a tool that raised has its error recorded already, by _invoke
        span.set_attribute(tr.ERROR_TYPE, "unknown_tool")
        span.set_status(tr.Status(tr.StatusCode.ERROR, result.exception))
    elif capture:
        span.set_attribute(tr.TOOL_RESULT, tr.content_json(result.result))
    span.end()
    return result


async def _invoke(
    call: FunctionCallContent, tools: Mapping[str, FunctionTool], span: tr.Span | None = None
) -> FunctionResultContent:
    """Run one call; a failure becomes its result, and is recorded on ``span`` (not ended)."""
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
        tr.mark_failed(span, exc)
        return FunctionResultContent(call_id=call.call_id, exception=str(exc))
    except Exception as exc:  # the tool itself failed
        tr.mark_failed(span, exc)
        return FunctionResultContent(
            call_id=call.call_id,
            exception=f"tool {call.name!r} raised {type(exc).__name__}: {exc}",
        )
    return FunctionResultContent(call_id=call.call_id, result=result)


async def run_function_calls(
    calls: Sequence[FunctionCallContent], tools: Mapping[str, FunctionTool], *, traced: bool
) -> ChatMessage:
    """Run the calls concurrently; return one tool message with their results in call order.

    ``traced``: the run is traced (its span is current), so each call gets its span. An untraced
    run (no provider, or not sampled) makes none, rather than start orphan traces.
    """
    run = _run_one if traced else _invoke
    if len(calls) == 1:
        results = [await run(calls[0], tools)]
    else:
        results = await asyncio.gather(*(run(c, tools) for c in calls))
    return ChatMessage(Role.TOOL, contents=results)
