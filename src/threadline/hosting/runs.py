"""Assistants runs: ``/v1/threads/{id}/runs``, polled or streamed, with tool outputs submitted back.

A run executes within its request: when ``POST .../runs`` answers, the run is ``completed`` (or
``requires_action`` when the model called a tool the caller declared), so polling clients see a
terminal state at once. Streaming runs send the Assistants events as they happen.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.hosting._idempotency import claim
from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    ServerState,
    field,
    optional,
    optional_list,
    optional_object,
    read_json,
    state_of,
)
from threadline.hosting._runner import (
    TurnOutcome,
    TurnRequest,
    memory_user_id,
    outcome_of,
    run_turn,
    stream_turn,
)
from threadline.hosting._sse import sse, sse_response
from threadline.hosting._turns import client_tools, new_id, paginate, run_options
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import IdempotencyRecord, ItemsChangedError, StoredObject
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, FunctionResultContent, TextContent
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["routes"]


@dataclass(slots=True, kw_only=True)
class _RunPlan:
    owner: str
    thread: StoredObject
    run: dict[str, Any]
    turn: TurnRequest
    tools: list[FunctionTool]
    new_messages: list[tuple[ChatMessage, dict[str, Any]]]


def _usage(outcome: TurnOutcome, before: dict[str, Any] | None) -> dict[str, Any]:
    usage = outcome.usage
    prompt = (usage.input_token_count or 0) + (before or {}).get("prompt_tokens", 0)
    completion = (usage.output_token_count or 0) + (before or {}).get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _pending_calls(outcome: TurnOutcome, tools: list[FunctionTool]) -> list[FunctionCallContent]:
    names = {t.name for t in tools}
    return [
        c
        for m in outcome.messages
        if m.role == Role.ASSISTANT
        for c in m.contents
        if type(c) is FunctionCallContent and c.name in names
    ]


def _finish_run(run: dict[str, Any], outcome: TurnOutcome) -> dict[str, Any]:
    tools = cast(list[FunctionTool], run.pop("_tools", []))
    now = int(time.time())
    calls = _pending_calls(outcome, tools) if outcome.pending_calls else []
    done = {**run, "usage": _usage(outcome, run.get("usage")), "started_at": run["created_at"]}
    if calls:
        done["status"] = "requires_action"
        done["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c.call_id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in calls
                ]
            },
        }
    else:
        done["status"] = "completed"
        done["required_action"] = None
        done["completed_at"] = now
    return done


async def _save(
    state: ServerState, plan: _RunPlan, run: dict[str, Any], outcome: TurnOutcome
) -> None:
    from threadline.hosting.assistants import thread_messages_from

    thread = plan.thread
    assistant_id = run["assistant_id"]
    objects = thread_messages_from(plan.owner, thread.id, plan.new_messages)
    produced: list[tuple[ChatMessage, dict[str, Any]]] = [
        (m, {}) for m in outcome.messages if m.role == Role.ASSISTANT
    ]
    objects += thread_messages_from(
        plan.owner, thread.id, produced, run_id=run["id"], assistant_id=assistant_id
    )
    stored_run = {k: v for k, v in run.items() if not k.startswith("_")}
    objects.append(
        StoredObject(
            id=run["id"],
            owner=plan.owner,
            kind="run",
            parent=thread.id,
            body=stored_run,
            created_at=float(run["created_at"]),
        )
    )
    items = [m.to_dict() for m in (*plan.turn.input, *outcome.messages)]
    try:
        await state.storage.append(
            thread.container or thread.id,
            items,
            expected_len=len(plan.turn.history),
            objects=objects,
        )
    except ItemsChangedError:
        raise ApiError(
            409,
            f"Thread '{thread.id}' changed while the run executed; retry it.",
            code="thread_changed",
        ) from None


async def _active_run(state: ServerState, owner: str, thread_id: str) -> StoredObject | None:
    latest = await state.storage.list_objects(owner, "run", parent=thread_id, limit=1)
    if latest and latest[0].body.get("status") == "requires_action":
        return latest[0]
    return None


async def _thread(request: Request) -> tuple[ServerState, str, StoredObject]:
    state, owner = state_of(request)
    thread_id = request.path_params["thread_id"]
    thread = await state.storage.get(owner, "thread", thread_id)
    if thread is None:
        raise ApiError.not_found("thread", thread_id)
    return state, owner, thread


async def _plan_run(
    state: ServerState, owner: str, thread: StoredObject, body: dict[str, Any]
) -> _RunPlan:
    from threadline.hosting.assistants import user_messages

    assistant_id = field(body, "assistant_id", str)
    assistant = await state.storage.get(owner, "assistant", assistant_id)
    if assistant is None:
        raise ApiError.not_found("assistant", assistant_id, param="assistant_id")
    optional(body, "stream", bool)
    active = await _active_run(state, owner, thread.id)
    if active is not None:
        raise ApiError.bad(
            f"Thread {thread.id} already has an active run {active.id}; submit its tool outputs "
            "or cancel it first."
        )
    config = assistant.body
    instructions = optional(body, "instructions", str) or config.get("instructions")
    extra = optional(body, "additional_instructions", str)
    if extra:
        instructions = "\n\n".join(p for p in (instructions, extra) if p)
    tools = client_tools(
        body if "tools" in body else {"tools": config.get("tools") or []}, nested=True
    )
    new_messages = user_messages(body.get("additional_messages") or [], "additional_messages")
    history = await state.storage.items(thread.container or thread.id)
    options = run_options(body, max_tokens_key="max_completion_tokens")
    if "temperature" not in options and config.get("temperature") is not None:
        options["temperature"] = float(config["temperature"])
    now = int(time.time())
    run: dict[str, Any] = {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": now,
        "thread_id": thread.id,
        "assistant_id": assistant_id,
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": optional(body, "model", str) or config.get("model"),
        "instructions": instructions or "",
        "tools": body.get("tools", config.get("tools") or []),
        "metadata": optional_object(body, "metadata") or {},
        "usage": None,
        "temperature": options.get("temperature"),
        "top_p": options.get("top_p"),
        "max_prompt_tokens": None,
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": True,
        "_tools": tools,
    }
    turn = TurnRequest(
        history=[ChatMessage.from_dict(d) for d in history],
        input=[m for m, _ in new_messages],
        instructions=instructions,
        tools=tools,
        options=options,
        user_id=memory_user_id(owner, None),
    )
    return _RunPlan(
        owner=owner, thread=thread, run=run, turn=turn, tools=tools, new_messages=new_messages
    )


async def _execute(state: ServerState, plan: _RunPlan) -> dict[str, Any]:
    outcome = await run_turn(state.agent, plan.turn)
    run = _finish_run(plan.run, outcome)
    await _save(state, plan, run, outcome)
    return {k: v for k, v in run.items() if not k.startswith("_")}


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}


async def _respond(
    request: Request,
    state: ServerState,
    owner: str,
    stream: bool,
    make_plan: Callable[[], Awaitable[_RunPlan]],
) -> Response:
    """Run once per ``Idempotency-Key``: a retry of a finished request gets its answer again.

    The key is claimed before the request is checked against the thread's state, because a
    finished first attempt changes that state (a retry of a run that now waits for tool outputs
    would otherwise be refused as "already has an active run").
    """
    key, done = await claim(request, state, owner)
    if done is not None:
        if stream:
            return sse_response(_replay(state, owner, done.body))
        return JSONResponse(done.body, status_code=done.status)
    try:
        plan = await make_plan()
        if stream:
            return sse_response(_execute_stream(state, plan, key))
        body = await _execute(state, plan)
    except BaseException:
        if key is not None:
            await asyncio.shield(state.storage.idempotency_release(owner, key))
        raise
    if key is not None:
        record = IdempotencyRecord(status=200, body=body)
        await asyncio.shield(state.storage.idempotency_finish(owner, key, record))
    return JSONResponse(body)


async def _replay(state: ServerState, owner: str, run: dict[str, Any]) -> AsyncIterator[bytes]:
    """The events of a finished run: its messages whole, then its final state."""
    stored = await state.storage.list_objects(
        owner, "message", parent=run["thread_id"], limit=10_000
    )
    events = [sse(run, "thread.run.created")]
    for message in reversed(stored):
        if message.body.get("run_id") != run["id"]:
            continue
        body = message.body
        events.append(
            sse({**body, "status": "in_progress", "content": []}, "thread.message.created")
        )
        delta = {"id": body["id"], "object": "thread.message.delta", "delta": {"content": [
            {"index": i, **part} for i, part in enumerate(body.get("content", []))
        ]}}  # fmt: skip
        events += [sse(delta, "thread.message.delta"), sse(body, "thread.message.completed")]
    kind = "thread.run.requires_action" if run["status"] == "requires_action" else (
        "thread.run.completed"
    )  # fmt: skip
    yield b"".join(events) + sse(run, kind) + sse("[DONE]", "done")


async def _execute_stream(
    state: ServerState, plan: _RunPlan, key: str | None = None
) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for chunk in _run_events(state, plan, key):
            yield chunk
        finished = True
    finally:
        if key is not None and not finished:
            # A failed or abandoned stream frees its key, so a retry runs again.
            await asyncio.shield(state.storage.idempotency_release(plan.owner, key))


async def _run_events(state: ServerState, plan: _RunPlan, key: str | None) -> AsyncIterator[bytes]:
    run = plan.run
    thread_id = plan.thread.id
    if run["status"] == "queued":
        yield sse(_public(run), "thread.run.created")
        yield sse(_public(run), "thread.run.queued")
    yield sse(
        _public({**run, "status": "in_progress", "started_at": int(time.time())}),
        "thread.run.in_progress",
    )
    declared = {t.name for t in plan.tools}
    updates: list[AgentRunResponseUpdate] = []
    open_message: dict[str, Any] | None = None
    text: list[str] = []

    def close() -> bytes | None:
        nonlocal open_message, text
        if open_message is None:
            return None
        done: dict[str, Any] = {
            **open_message,
            "status": "completed",
            "completed_at": int(time.time()),
            "content": [{"type": "text", "text": {"value": "".join(text), "annotations": []}}],
        }
        open_message, text = None, []
        return sse(done, "thread.message.completed")

    fallback = new_message_id()
    async for update in stream_turn(state.agent, plan.turn):
        updates.append(update)
        if update.role != Role.ASSISTANT:
            continue
        for content in update.contents:
            if type(content) is TextContent and content.text:
                message_id = update.message_id or fallback
                if open_message is not None and open_message["id"] != message_id:
                    closed = close()
                    if closed:
                        yield closed
                if open_message is None:
                    from threadline.hosting.assistants import message_object

                    open_message = message_object(
                        ChatMessage(Role.ASSISTANT, contents=[], message_id=message_id),
                        thread_id,
                        created_at=time.time(),
                        run_id=run["id"],
                        assistant_id=run["assistant_id"],
                        status="in_progress",
                    )
                    yield sse(open_message, "thread.message.created")
                    yield sse(open_message, "thread.message.in_progress")
                text.append(content.text)
                yield sse(
                    {
                        "id": message_id,
                        "object": "thread.message.delta",
                        "delta": {
                            "content": [
                                {
                                    "index": 0,
                                    "type": "text",
                                    "text": {"value": content.text, "annotations": []},
                                }
                            ]
                        },
                    },
                    "thread.message.delta",
                )
            elif type(content) is FunctionCallContent and content.name in declared:
                closed = close()
                if closed:
                    yield closed
    closed = close()
    if closed:
        yield closed
    outcome = outcome_of(plan.turn, updates)
    final = _finish_run(run, outcome)
    await _save(state, plan, final, outcome)
    if key is not None:
        record = IdempotencyRecord(status=200, body=_public(final))
        await state.storage.idempotency_finish(plan.owner, key, record)
    kind = (
        "thread.run.requires_action"
        if final["status"] == "requires_action"
        else ("thread.run.completed")
    )
    yield sse(_public(final), kind)
    yield sse("[DONE]", "done")


async def create_run(request: Request) -> Response:
    """``POST /v1/threads/{id}/runs``."""
    state, owner, thread = await _thread(request)
    body = await read_json(request, state.config.max_body_bytes)
    stream = bool(optional(body, "stream", bool))
    return await _respond(
        request, state, owner, stream, lambda: _plan_run(state, owner, thread, body)
    )


async def create_thread_and_run(request: Request) -> Response:
    """``POST /v1/threads/runs``: create a thread (``thread``) and run the assistant on it."""
    from threadline.hosting.assistants import new_thread

    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    stream = bool(optional(body, "stream", bool))

    async def plan() -> _RunPlan:
        # Check the run's parameters before creating anything.
        assistant_id = field(body, "assistant_id", str)
        if await state.storage.get(owner, "assistant", assistant_id) is None:
            raise ApiError.not_found("assistant", assistant_id, param="assistant_id")
        thread = await new_thread(state, owner, optional_object(body, "thread") or {})
        return await _plan_run(state, owner, thread, body)

    return await _respond(request, state, owner, stream, plan)


async def _find_run(request: Request) -> tuple[ServerState, str, StoredObject, StoredObject]:
    state, owner, thread = await _thread(request)
    run_id = request.path_params["run_id"]
    run = await state.storage.get(owner, "run", run_id)
    if run is None or run.parent != thread.id:
        raise ApiError.not_found("run", run_id)
    return state, owner, thread, run


async def get_run(request: Request) -> Response:
    """``GET /v1/threads/{id}/runs/{run_id}``."""
    _, _, _, run = await _find_run(request)
    return JSONResponse(run.body)


async def list_runs(request: Request) -> Response:
    """``GET /v1/threads/{id}/runs``."""
    state, owner, thread = await _thread(request)
    found = await state.storage.list_objects(owner, "run", parent=thread.id, limit=10_000)
    return JSONResponse(paginate([f.body for f in reversed(found)], dict(request.query_params)))


async def cancel_run(request: Request) -> Response:
    """``POST .../runs/{run_id}/cancel``: only a run waiting for tool outputs can be cancelled."""
    state, _, _, run = await _find_run(request)
    if run.body.get("status") != "requires_action":
        raise ApiError.bad(f"Cannot cancel run with status '{run.body.get('status')}'.")
    body = {
        **run.body,
        "status": "cancelled",
        "cancelled_at": int(time.time()),
        "required_action": None,
    }
    await state.storage.put(replace(run, body=body))
    return JSONResponse(body)


async def submit_tool_outputs(request: Request) -> Response:
    """``POST .../runs/{run_id}/submit_tool_outputs``: continue a run with the tools' results."""
    state, owner, thread, run = await _find_run(request)
    body = await read_json(request, state.config.max_body_bytes)
    stream = bool(optional(body, "stream", bool))

    async def plan() -> _RunPlan:
        if run.body.get("status") != "requires_action":
            raise ApiError.bad(
                f"Run {run.id} is not waiting for tool outputs (status '{run.body.get('status')}')."
            )
        pending = {
            c["id"] for c in run.body["required_action"]["submit_tool_outputs"]["tool_calls"]
        }
        raw = optional_list(body, "tool_outputs")
        if raw is None:
            raise ApiError.bad("Missing required parameter: 'tool_outputs'.", param="tool_outputs")
        results: list[FunctionResultContent] = []
        for i, entry in enumerate(cast(list[object], raw)):
            where = f"tool_outputs[{i}]"
            if not isinstance(entry, dict):
                raise ApiError.bad(f"'{where}' must be an object.", param=where)
            output = cast(dict[str, Any], entry)
            call_id = output.get("tool_call_id")
            if call_id not in pending:
                raise ApiError.bad(
                    f"'{where}.tool_call_id' {call_id!r} is not a pending tool call.",
                    param=f"{where}.tool_call_id",
                )
            text = output.get("output")
            if not isinstance(text, str):
                raise ApiError.bad(f"'{where}.output' must be a string.", param=f"{where}.output")
            try:
                value: Any = json.loads(text)
            except ValueError:
                value = text
            results.append(FunctionResultContent(call_id=cast(str, call_id), result=value))
        missing = pending - {r.call_id for r in results}
        if missing:
            raise ApiError.bad(f"Missing tool outputs for {sorted(missing)}.", param="tool_outputs")
        history = await state.storage.items(thread.container or thread.id)
        assistant = await state.storage.get(owner, "assistant", run.body["assistant_id"])
        tools_json: Any = (
            run.body.get("tools") or (assistant.body.get("tools") if assistant else []) or []
        )
        tools = client_tools({"tools": tools_json}, nested=True)
        turn = TurnRequest(
            history=[ChatMessage.from_dict(d) for d in history],
            input=[ChatMessage(Role.TOOL, contents=results)],
            instructions=run.body.get("instructions") or None,
            tools=tools,
            options=run_options(run.body, max_tokens_key="max_completion_tokens"),
            user_id=memory_user_id(owner, None),
        )
        return _RunPlan(
            owner=owner,
            thread=thread,
            run={**run.body, "_tools": tools},
            turn=turn,
            tools=tools,
            new_messages=[],
        )

    return await _respond(request, state, owner, stream, plan)


def routes() -> list[Route]:
    """The run routes."""
    base = "/v1/threads/{thread_id}/runs"
    return [
        Route("/v1/threads/runs", create_thread_and_run, methods=["POST"]),
        Route(base, create_run, methods=["POST"]),
        Route(base, list_runs, methods=["GET"]),
        Route(base + "/{run_id}", get_run, methods=["GET"]),
        Route(base + "/{run_id}/cancel", cancel_run, methods=["POST"]),
        Route(base + "/{run_id}/submit_tool_outputs", submit_tool_outputs, methods=["POST"]),
    ]
