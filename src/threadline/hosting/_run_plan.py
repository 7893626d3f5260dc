"""Planning, finishing and saving an Assistants run: everything but its HTTP handlers and events.

A run is planned (its assistant, tools, options and the thread's history checked) before any
model call, finished from the turn's outcome (``completed``, or ``requires_action`` with the
caller's pending tool calls), and saved in one batch: the turn the agent appended to the thread
(held by a ``StagedStore``), its new ``message`` records and the run record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.hosting._request import (
    ServerState,
    field,
    optional,
    optional_object,
)
from threadline.hosting._runner import TurnOutcome, TurnRequest, memory_user_id, run_turn
from threadline.hosting._threads import thread_messages_from, user_messages
from threadline.hosting._turns import client_tools, new_id, run_options
from threadline.hosting.errors import ApiError
from threadline.openai_wire import tool_calls_json
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.staged import StagedStore
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "RunPlan",
    "active_run",
    "execute",
    "finish_run",
    "plan_run",
    "public",
    "read_thread",
    "save",
]


@dataclass(slots=True, kw_only=True)
class RunPlan:
    """A checked run request: the run object so far, the turn to execute and what to store."""

    owner: str
    thread: ThreadRecord
    run: dict[str, Any]
    turn: TurnRequest
    staged: StagedStore
    tools: list[FunctionTool]
    new_messages: list[tuple[ChatMessage, dict[str, Any]]]


async def read_thread(
    state: ServerState, thread: ThreadRecord
) -> tuple[StagedStore, list[ChatMessage]]:
    """The store a run's agent works on (over the thread's own), and the history read from it."""
    store = StagedStore(state.database.store(thread.thread_id or thread.id))
    return store, await store.list_messages()


def _usage(outcome: TurnOutcome, before: dict[str, Any] | None) -> dict[str, Any]:
    usage = outcome.usage
    prompt = (usage.input_token_count or 0) + (before or {}).get("prompt_tokens", 0)
    completion = (usage.output_token_count or 0) + (before or {}).get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def pending_calls(outcome: TurnOutcome, tools: list[FunctionTool]) -> list[FunctionCallContent]:
    names = {t.name for t in tools}
    return [
        c
        for m in outcome.messages
        if m.role == Role.ASSISTANT
        for c in m.contents
        if type(c) is FunctionCallContent and c.name in names
    ]


def finish_run(run: dict[str, Any], outcome: TurnOutcome) -> dict[str, Any]:
    tools = cast(list[FunctionTool], run.pop("_tools", []))
    now = int(time.time())
    calls = pending_calls(outcome, tools) if outcome.pending_calls else []
    done = {**run, "usage": _usage(outcome, run.get("usage")), "started_at": run["created_at"]}
    if calls:
        done["status"] = "requires_action"
        done["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": tool_calls_json(calls)},
        }
    else:
        done["status"] = "completed"
        done["required_action"] = None
        done["completed_at"] = now
    return done


async def save(
    state: ServerState, plan: RunPlan, run: dict[str, Any], outcome: TurnOutcome
) -> None:
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
        ThreadRecord(
            kind="run",
            id=run["id"],
            owner=plan.owner,
            parent=thread.id,
            body=stored_run,
            created_at=float(run["created_at"]),
        )
    )
    batch = plan.staged.stage_into(ThreadBatch(), thread.thread_id or thread.id)
    try:
        await state.database.commit(batch.put(*objects))
    except ConcurrentThreadUpdateError:
        raise ApiError(
            409,
            f"Thread '{thread.id}' changed while the run executed; retry it.",
            code="thread_changed",
        ) from None


async def active_run(state: ServerState, owner: str, thread_id: str) -> ThreadRecord | None:
    latest = await state.database.list_records("run", owner=owner, parent=thread_id, limit=1)
    if latest and (latest[0].body or {}).get("status") == "requires_action":
        return latest[0]
    return None


async def plan_run(
    state: ServerState, owner: str, thread: ThreadRecord, body: dict[str, Any]
) -> RunPlan:
    assistant_id = field(body, "assistant_id", str)
    assistant = await state.database.get_record("assistant", assistant_id, owner=owner)
    if assistant is None or assistant.body is None:
        raise ApiError.not_found("assistant", assistant_id, param="assistant_id")
    optional(body, "stream", bool)
    active = await active_run(state, owner, thread.id)
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
    staged, history = await read_thread(state, thread)
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
        store=staged,
        history=history,
        input=[m for m, _ in new_messages],
        instructions=instructions,
        tools=tools,
        options=options,
        user_id=memory_user_id(owner, None),
    )
    return RunPlan(
        owner=owner,
        thread=thread,
        run=run,
        turn=turn,
        staged=staged,
        tools=tools,
        new_messages=new_messages,
    )


async def execute(state: ServerState, plan: RunPlan) -> dict[str, Any]:
    outcome = await run_turn(state.agent, plan.turn)
    run = finish_run(plan.run, outcome)
    await save(state, plan, run, outcome)
    return {k: v for k, v in run.items() if not k.startswith("_")}


def public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}
