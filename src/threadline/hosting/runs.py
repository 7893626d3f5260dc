"""Assistants runs: ``/v1/threads/{id}/runs``, polled or streamed, with tool outputs submitted back.

A run executes within its request: when ``POST .../runs`` answers, the run is ``completed`` (or
``requires_action`` when the model called a tool the caller declared), so polling clients see a
terminal state at once. Streaming runs send the Assistants events as they happen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
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
from threadline.hosting._run_plan import RunPlan, execute, plan_run, read_thread
from threadline.hosting._run_stream import execute_stream, replay
from threadline.hosting._runner import TurnRequest, memory_user_id
from threadline.hosting._sse import sse_response
from threadline.hosting._threads import new_thread
from threadline.hosting._turns import client_tools, paginate, run_options
from threadline.hosting.errors import ApiError
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.contents import Content, FunctionResultContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["routes"]


async def _thread(request: Request) -> tuple[ServerState, str, ThreadRecord]:
    state, owner = state_of(request)
    thread_id = request.path_params["thread_id"]
    thread = await state.database.get_record("thread", thread_id, owner=owner)
    if thread is None:
        raise ApiError.not_found("thread", thread_id)
    return state, owner, thread


async def _respond(
    request: Request,
    state: ServerState,
    owner: str,
    body: dict[str, Any],
    make_plan: Callable[[], Awaitable[RunPlan]],
) -> Response:
    """Run once per ``Idempotency-Key``: a retry of a finished request gets its answer again.

    The key is claimed before the request is checked against the thread's state, because a
    finished first attempt changes that state (a retry of a run that now waits for tool outputs
    would otherwise be refused as "already has an active run").
    """
    stream = bool(optional(body, "stream", bool))
    key, done = await claim(request, state, owner, body)
    if done is not None:
        if stream:
            return sse_response(replay(state, owner, done.body))
        return JSONResponse(done.body, status_code=done.status)
    try:
        plan = await make_plan()
        if stream:
            return sse_response(execute_stream(state, plan, key))
        answer = await execute(state, plan)
    except BaseException:
        if key is not None:
            await key.release(state.database)
        raise
    if key is not None:
        await key.finish(state.database, answer)
    return JSONResponse(answer)


async def create_run(request: Request) -> Response:
    """``POST /v1/threads/{id}/runs``."""
    state, owner, thread = await _thread(request)
    body = await read_json(request, state.config.max_body_bytes)
    return await _respond(request, state, owner, body, lambda: plan_run(state, owner, thread, body))


async def create_thread_and_run(request: Request) -> Response:
    """``POST /v1/threads/runs``: create a thread (``thread``) and run the assistant on it."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)

    async def plan() -> RunPlan:
        # Check the run's parameters before creating anything.
        assistant_id = field(body, "assistant_id", str)
        if await state.database.get_record("assistant", assistant_id, owner=owner) is None:
            raise ApiError.not_found("assistant", assistant_id, param="assistant_id")
        thread = await new_thread(state, owner, optional_object(body, "thread") or {})
        return await plan_run(state, owner, thread, body)

    return await _respond(request, state, owner, body, plan)


async def _find_run(request: Request) -> tuple[ServerState, str, ThreadRecord, ThreadRecord]:
    state, owner, thread = await _thread(request)
    run_id = request.path_params["run_id"]
    run = await state.database.get_record("run", run_id, owner=owner)
    if run is None or run.parent != thread.id or run.body is None:
        raise ApiError.not_found("run", run_id)
    return state, owner, thread, run


def _body(record: ThreadRecord) -> dict[str, Any]:
    return record.body or {}


async def get_run(request: Request) -> Response:
    """``GET /v1/threads/{id}/runs/{run_id}``."""
    _, _, _, run = await _find_run(request)
    return JSONResponse(_body(run))


async def list_runs(request: Request) -> Response:
    """``GET /v1/threads/{id}/runs``."""
    state, owner, thread = await _thread(request)
    found = await state.database.list_records("run", owner=owner, parent=thread.id, limit=10_000)
    return JSONResponse(paginate([_body(f) for f in reversed(found)], dict(request.query_params)))


async def cancel_run(request: Request) -> Response:
    """``POST .../runs/{run_id}/cancel``: only a run waiting for tool outputs can be cancelled.

    The thread keeps the run's tool calls, so each gets a result saying it was cancelled, in the
    same write: a later run never shows the model a call without its result.
    """
    state, _, thread, run = await _find_run(request)
    run_body = _body(run)
    if run_body.get("status") != "requires_action":
        raise ApiError.bad(f"Cannot cancel run with status '{run_body.get('status')}'.")
    calls = run_body["required_action"]["submit_tool_outputs"]["tool_calls"]
    results: list[Content] = [
        FunctionResultContent(call_id=c["id"], exception="the run was cancelled") for c in calls
    ]
    body = {
        **run_body,
        "status": "cancelled",
        "cancelled_at": int(time.time()),
        "required_action": None,
    }
    closing = [ChatMessage(Role.TOOL, contents=results)] if results else []
    batch = ThreadBatch().append(thread.thread_id or thread.id, closing)
    await state.database.commit(batch.put(replace(run, body=body)))
    return JSONResponse(body)


async def submit_tool_outputs(request: Request) -> Response:
    """``POST .../runs/{run_id}/submit_tool_outputs``: continue a run with the tools' results."""
    state, owner, thread, run = await _find_run(request)
    body = await read_json(request, state.config.max_body_bytes)

    run_body = _body(run)

    async def plan() -> RunPlan:
        if run_body.get("status") != "requires_action":
            raise ApiError.bad(
                f"Run {run.id} is not waiting for tool outputs (status '{run_body.get('status')}')."
            )
        pending = {
            c["id"] for c in run_body["required_action"]["submit_tool_outputs"]["tool_calls"]
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
            except RecursionError:
                raise ApiError.bad(
                    f"Invalid '{where}.output': JSON nested too deeply to read; flatten it or "
                    "send it as plain text.",
                    param=f"{where}.output",
                ) from None
            except ValueError:
                value = text
            results.append(FunctionResultContent(call_id=cast(str, call_id), result=value))
        missing = pending - {r.call_id for r in results}
        if missing:
            raise ApiError.bad(f"Missing tool outputs for {sorted(missing)}.", param="tool_outputs")
        staged, history = await read_thread(state, thread)
        assistant = await state.database.get_record(
            "assistant", run_body["assistant_id"], owner=owner
        )
        tools_json: Any = (
            run_body.get("tools") or (_body(assistant).get("tools") if assistant else []) or []
        )
        tools = client_tools({"tools": tools_json}, nested=True)
        turn = TurnRequest(
            store=staged,
            history=history,
            input=[ChatMessage(Role.TOOL, contents=results)],
            instructions=run_body.get("instructions") or None,
            tools=tools,
            options=run_options(run_body, max_tokens_key="max_completion_tokens"),
            user_id=memory_user_id(owner, None),
        )
        return RunPlan(
            owner=owner,
            thread=thread,
            run={**run_body, "_tools": tools},
            turn=turn,
            staged=staged,
            tools=tools,
            new_messages=[],
        )

    return await _respond(request, state, owner, body, plan)


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
