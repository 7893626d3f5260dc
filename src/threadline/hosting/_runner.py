"""Running the hosted agent on a conversation's own thread.

A conversation, a Responses chain and an Assistants thread are threads of the server's database.
The hosted ``ChatAgent`` runs on an ``AgentThread`` whose store is a ``StagedStore`` over that
thread: it reads the history from the thread, and its turn (the one append of ``agents/_turn.py``)
is held so the route commits it in one batch with the response object and idempotency answer.
Chat Completions, which is stateless, runs on an in-memory thread holding the request's history.

Tools declared in a request are the caller's: the model may call them, but the server must return
those calls instead of running them, so they are deferred tools (``FunctionTool`` without a
function): the agent's tool loop stops at such a call as a normal outcome and reports it in
``pending_calls``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from threadline.agents.chat_agent import ChatAgent
from threadline.clients.base import RunOptions
from threadline.history import estimate_tokens
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.thread import AgentThread
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, UsageDetails
from threadline.types.messages import ChatMessage
from threadline.types.responses import AgentRunResponseUpdate, messages_from_updates

__all__ = [
    "TurnOutcome",
    "TurnRequest",
    "client_tool",
    "memory_user_id",
    "outcome_of",
    "run_turn",
    "stream_turn",
]


def client_tool(name: str, description: str, parameters: dict[str, Any]) -> FunctionTool:
    """A tool the caller declared: offered to the model, returned to the caller when called."""
    return FunctionTool(name=name, description=description, parameters=parameters)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRequest:
    """One turn to run: the thread's store, the history read from it, the new input, settings."""

    store: ChatMessageStore
    """Where the agent reads the history and appends its turn (a ``StagedStore`` when stored)."""
    history: Sequence[ChatMessage]
    """The history as the request was checked against (for usage estimates)."""
    input: Sequence[ChatMessage]
    instructions: str | None = None
    tools: Sequence[FunctionTool] = ()
    options: RunOptions | None = None
    user_id: str | None = None
    """Whose long-term memory the agent's memory components use (see :func:`memory_user_id`)."""
    thread_id: str | None = None
    """The conversation's thread, when the turn extends one: the agent's thread takes its id, so
    spans (``gen_ai.conversation.id``) and memories (their source thread) name the conversation
    a client and the web UI know, not a throwaway id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnOutcome:
    """What a turn produced."""

    messages: list[ChatMessage]
    usage: UsageDetails
    pending_calls: bool
    """True when the turn ended on calls to caller-declared tools."""


def _agent_for(agent: ChatAgent, request: TurnRequest) -> ChatAgent:
    if not request.instructions:
        return agent
    # The same client, tools and providers; only the instructions differ.
    return agent.replace(
        instructions="\n\n".join(p for p in (agent.instructions, request.instructions) if p)
    )


def _thread(request: TurnRequest) -> AgentThread:
    return AgentThread(
        message_store=request.store, user_id=request.user_id, thread_id=request.thread_id
    )


def memory_user_id(owner: str, user: str | None) -> str:
    """The memory owner of a request: the API key's account, narrowed by the request's ``user``.

    Two keys never share memories, nor do two ``user`` values of one key. Both parts are quoted so
    no pair of (account, user) can spell another's id.
    """
    account = quote(owner, safe="")
    return f"{account}/{quote(user, safe='')}" if user else account


def _estimate(messages: Sequence[ChatMessage]) -> int:
    # Models that report no usage (scripted, some local ones) get threadline's one estimate.
    return sum(estimate_tokens(m) for m in messages)


def _usage(
    request: TurnRequest, produced: Sequence[ChatMessage], usage: UsageDetails | None
) -> UsageDetails:
    if usage is not None and usage.input_token_count is not None:
        return usage
    prompt = _estimate(request.history) + _estimate(request.input)
    output = _estimate(produced)
    return UsageDetails(
        input_token_count=prompt, output_token_count=output, total_token_count=prompt + output
    )


def _has_pending(messages: Sequence[ChatMessage], declared: set[str]) -> bool:
    return any(
        type(c) is FunctionCallContent and c.name in declared for m in messages for c in m.contents
    )


async def run_turn(agent: ChatAgent, request: TurnRequest) -> TurnOutcome:
    """Run a turn to its end (or to the first call of a caller-declared tool)."""
    response = await _agent_for(agent, request).run(
        list(request.input),
        thread=_thread(request),
        tools=list(request.tools) or None,
        **(request.options or {}),
    )
    produced = list(response.messages)
    return TurnOutcome(
        messages=produced,
        usage=_usage(request, produced, response.usage),
        pending_calls=bool(response.pending_calls),
    )


async def stream_turn(
    agent: ChatAgent, request: TurnRequest
) -> AsyncGenerator[AgentRunResponseUpdate, None]:
    """Stream a turn's updates; ends after a call to a caller-declared tool."""
    # run_stream is an async generator: closing it explicitly releases the thread at once.
    stream = _agent_for(agent, request).run_stream(
        list(request.input),
        thread=_thread(request),
        tools=list(request.tools) or None,
        **(request.options or {}),
    )
    try:
        async for update in stream:
            yield update
    finally:
        await stream.aclose()


def outcome_of(request: TurnRequest, updates: Sequence[AgentRunResponseUpdate]) -> TurnOutcome:
    """Fold streamed updates into the turn's outcome."""
    produced, usage = messages_from_updates(updates)
    return TurnOutcome(
        messages=produced,
        usage=_usage(request, produced, usage),
        pending_calls=_has_pending(produced, {t.name for t in request.tools}),
    )
