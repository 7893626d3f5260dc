"""``/v1/chat/completions``: stateless; the request carries the whole history every time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    ServerState,
    optional,
    optional_object,
    read_json,
    state_of,
)
from threadline.hosting._runner import (
    TurnRequest,
    memory_user_id,
    outcome_of,
    run_turn,
    stream_turn,
)
from threadline.hosting._sse import sse, sse_response
from threadline.hosting._turns import (
    client_tools,
    decode_messages,
    new_id,
    require_calls_for_results,
    require_tool_results,
    run_options,
    visible_output,
)
from threadline.openai_wire import chat_to_messages
from threadline.threads.stores.memory import ChatMessageList
from threadline.types.contents import FunctionCallContent, TextContent, UsageDetails
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["routes"]


def _split(messages: list[ChatMessage]) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """History up to the last assistant message, and the new input after it."""
    last = max((i for i, m in enumerate(messages) if m.role == Role.ASSISTANT), default=-1)
    return messages[: last + 1], messages[last + 1 :]


def _usage(usage: UsageDetails) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_token_count or 0,
        "completion_tokens": usage.output_token_count or 0,
        "total_tokens": usage.total_token_count or 0,
    }


def _calls(calls: list[FunctionCallContent]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in calls
    ]


def _message_json(messages: list[ChatMessage]) -> tuple[dict[str, Any], str]:
    text = "\n".join(m.text for m in messages if m.text)
    calls = [c for m in messages for c in m.contents if type(c) is FunctionCallContent]
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = _calls(calls)
    return message, ("tool_calls" if calls else "stop")


async def _stream(
    state: ServerState, turn: TurnRequest, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    chunk_id = new_id("chatcmpl")
    created = int(time.time())
    declared = {t.name for t in turn.tools}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    updates: list[AgentRunResponseUpdate] = []
    call_index = 0
    async for update in stream_turn(state.agent, turn):
        updates.append(update)
        if update.role != Role.ASSISTANT:
            continue
        for content in update.contents:
            if type(content) is TextContent and content.text:
                yield chunk({"content": content.text})
            elif type(content) is FunctionCallContent and content.name in declared:
                call = {"index": call_index, **_calls([content])[0]}
                call_index += 1
                yield chunk({"tool_calls": [call]})
    outcome = outcome_of(turn, updates)
    yield chunk({}, "tool_calls" if call_index else "stop")
    if include_usage:
        yield sse(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(outcome.usage),
            }
        )
    yield sse("[DONE]")


async def create_chat_completion(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    if "messages" not in body:
        from threadline.hosting.errors import ApiError

        raise ApiError.bad("Missing required parameter: 'messages'.", param="messages")
    messages = decode_messages(chat_to_messages, body["messages"], "messages")
    require_calls_for_results((), messages, "messages")
    require_tool_results(messages, "messages", agent=state.agent)
    model = optional(body, "model", str) or state.config.model_name
    stream = optional(body, "stream", bool)
    stream_options = optional_object(body, "stream_options") or {}
    options = run_options(body, max_tokens_key="max_tokens")
    if "max_completion_tokens" in body:
        options.update(run_options(body, max_tokens_key="max_completion_tokens"))
    history, new = _split(messages)
    tools = client_tools(body, nested=True)
    user_id = memory_user_id(owner, options.get("user"))
    # Stateless: the request carries the history, so the agent runs on an in-memory thread of it.
    turn = TurnRequest(
        store=ChatMessageList(history),
        history=history,
        input=new,
        tools=tools,
        options=options,
        user_id=user_id,
    )
    if stream:
        include_usage = bool(stream_options.get("include_usage"))
        return sse_response(_stream(state, turn, model, include_usage))
    outcome = await run_turn(state.agent, turn)
    message, finish = _message_json(visible_output(outcome.messages, tools))
    return JSONResponse(
        {
            "id": new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": _usage(outcome.usage),
        }
    )


def routes() -> list[Route]:
    """The Chat Completions routes."""
    return [Route("/v1/chat/completions", create_chat_completion, methods=["POST"])]
