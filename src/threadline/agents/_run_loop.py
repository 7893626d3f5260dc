"""The tool loop: the one place a run calls the model, runs tools and decides when to stop.

``ChatAgent.run`` and ``run_stream`` both drive :func:`run_loop`; ``run`` only collects it, so the
two cannot disagree on what is called, stored or reported. The loop guarantees:

* The model is called at most ``max_tool_iterations + 1`` times; the last call forbids tools, and
  a model that calls them anyway fails the run with ``AgentRunError`` (unanswered calls would
  leave a history no chat API accepts).
* Each round's tool results are sent back in one tool message, in call order.
* A call to a *deferred* tool (a ``FunctionTool`` without a Python function: the caller runs it)
  ends the run normally: ordinary calls of the same answer still run, the assistant's call message
  and their results are stored, and the deferred calls are left in ``turn.pending`` for the caller
  to answer with a ``Role.TOOL`` message as the next run's input.
* A call that needs a person's approval ends the run the same way, its request added to the call
  message; a turn that answers approvals runs the approved calls before its first model call
  (see :mod:`threadline.agents._approvals` for what is stored when).
* Whatever ends the loop, the turn is committed (success, deferred calls) or failed (an exception,
  or a stream abandoned by its consumer), exactly once.
* Tracing (``turn.span``, the run's ``invoke_agent`` span, ``None`` when tracing is off): each model
  call gets a ``chat`` span and the client metrics, tools run with the run's span current (so their
  ``execute_tool`` spans nest under it), and the run's span ends with the turn. A span is made
  current only around an ``await``, never across a ``yield`` (see :mod:`threadline._tracing`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from time import perf_counter
from typing import Literal

from threadline import _tracing as tr
from threadline.agents._approvals import ask_approval, carry_out, needs_approval
from threadline.agents._spans import chat_span, end_agent, end_chat
from threadline.agents._tool_calls import function_calls, run_function_calls
from threadline.agents._turn import Turn
from threadline.clients.base import ChatOptions
from threadline.exceptions import AgentRunError
from threadline.types.contents import FunctionCallContent
from threadline.types.messages import ChatMessage
from threadline.types.responses import (
    AgentRunResponseUpdate,
    ChatResponseUpdate,
    messages_from_updates,
)

__all__ = ["run_loop"]


def _agent_update(update: ChatResponseUpdate, turn: Turn) -> AgentRunResponseUpdate:
    return AgentRunResponseUpdate(
        contents=update.contents,
        role=update.role,
        author_name=update.author_name or turn.author_name,
        response_id=update.response_id,
        message_id=update.message_id,
    )


def _record_stream(
    turn: Turn,
    updates: list[ChatResponseUpdate],
    span: tr.Span | None,
    started: float,
    options: ChatOptions,
) -> list[ChatMessage]:
    """Fold a streamed answer into messages and keep it, as the loop keeps a whole one."""
    folded, usage = messages_from_updates(updates)
    response_id = _last(updates, "response_id")
    answer = turn.record(
        folded,
        usage=usage,
        response_id=response_id,
        conversation_id=_last(updates, "conversation_id"),
    )
    if turn.observed:
        end_chat(
            span,
            started=started,
            client=turn.client,
            options=options,
            answer=answer,
            usage=usage,
            response_id=response_id,
            finish_reason=_last(updates, "finish_reason"),
        )
    return answer


def _last(
    updates: list[ChatResponseUpdate],
    field: Literal["response_id", "conversation_id", "finish_reason"],
) -> str | None:
    """The last value a stream gave for ``field`` (services send ids in their last updates)."""
    for update in reversed(updates):
        value = getattr(update, field)
        if value:
            return value
    return None


def _is_deferred(call: FunctionCallContent, turn: Turn) -> bool:
    found = turn.tools.get(call.name)
    return found is not None and found.is_deferred


async def run_loop(
    turn: Turn, *, max_tool_iterations: int, stream: bool
) -> AsyncGenerator[AgentRunResponseUpdate, None]:
    """Run ``turn`` to its end, committing it; yields updates only when ``stream`` is set.

    Without ``stream`` the model is called with ``get_response`` and nothing is yielded: the caller
    reads the outcome from ``turn``. The turn's span, if any, is ended here.
    """
    try:
        if turn.resolution is None:
            request = turn.first_request()
        else:  # answers to approvals: claimed, run and stored before the model hears of them
            request, outcome = await carry_out(turn)
            if stream:
                yield AgentRunResponseUpdate(
                    contents=outcome.contents, role=outcome.role, message_id=outcome.message_id
                )
        for iteration in range(max_tool_iterations + 1):
            final = iteration == max_tool_iterations
            options = turn.call_options(final=final)
            started = perf_counter() if turn.observed else 0.0
            span = None
            if turn.span is not None:
                span = chat_span(turn.span, client=turn.client, options=options, request=request)
            if stream:
                updates: list[ChatResponseUpdate] = []
                source = turn.client.get_streaming_response(request, options=options)
                try:
                    async for update in tr.iterate_in(span, source) if span else source:
                        updates.append(update)
                        yield _agent_update(update, turn)
                except BaseException as exc:
                    end_chat(span, started=started, client=turn.client, options=options, error=exc)
                    raise
                answer = _record_stream(turn, updates, span, started, options)
            else:
                try:
                    if span is None:
                        response = await turn.client.get_response(request, options=options)
                    else:
                        with tr.activated(span):  # the client's own spans nest under the call
                            response = await turn.client.get_response(request, options=options)
                except BaseException as exc:
                    end_chat(span, started=started, client=turn.client, options=options, error=exc)
                    raise
                answer = turn.record(
                    response.messages,
                    usage=response.usage,
                    response_id=response.response_id,
                    conversation_id=response.conversation_id,
                )
                if turn.observed:
                    end_chat(
                        span,
                        started=started,
                        client=turn.client,
                        options=options,
                        answer=answer,
                        usage=response.usage,
                        response_id=response.response_id,
                        finish_reason=response.finish_reason,
                    )
            calls = function_calls(answer)
            if not calls:
                break
            if final:
                raise AgentRunError(
                    f"the model still called {', '.join(repr(c.name) for c in calls)} on its last "
                    f"allowed call, after max_tool_iterations={max_tool_iterations} rounds of "
                    "tools, though tools were withheld; the thread keeps only the run's input. "
                    "Raise max_tool_iterations, or use a model that follows tool_choice='none'"
                )
            deferred = [c for c in calls if _is_deferred(c, turn)]
            asking = [c for c in calls if needs_approval(c, turn.tools)]
            ordinary = [c for c in calls if c not in deferred and c not in asking]
            if asking:  # before any result: a stream folds the requests into the calls' message
                asked = ask_approval(turn.produced, asking)
                if stream:
                    yield AgentRunResponseUpdate(
                        contents=asked.contents[-len(asking) :],
                        role=asked.role,
                        author_name=asked.author_name,
                        message_id=asked.message_id,
                    )
            results: ChatMessage | None = None
            if ordinary:
                with tr.activated(turn.span):  # each call's execute_tool span nests under the run
                    results = await run_function_calls(
                        ordinary, turn.tools, traced=turn.span is not None
                    )
                turn.produced.append(results)
                if stream:
                    yield AgentRunResponseUpdate(
                        contents=results.contents, role=results.role, message_id=results.message_id
                    )
            if deferred or asking:
                # The caller (or a person) answers these: stop here, stored and consistent.
                turn.pending = tuple(deferred)
                break
            assert results is not None
            request = turn.next_request(request, answer, results)
    except BaseException as exc:
        try:
            with tr.activated(turn.span):
                await turn.fail(exc)
        finally:
            tr.end_error(turn.span, exc)
        raise
    try:
        if turn.span is None:
            await turn.commit()
        else:
            with tr.activated(turn.span):  # what providers learn from the turn nests under it
                await turn.commit()
    except BaseException as exc:
        tr.end_error(turn.span, exc)
        raise
    if turn.span is not None:
        end_agent(turn.span, usage=turn.usage, response_id=turn.response_id, produced=turn.produced)
