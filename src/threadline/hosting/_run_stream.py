"""The events of a streamed Assistants run, and the replay of a finished one to a retry."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from threadline.hosting._idempotency import Claim
from threadline.hosting._request import ServerState
from threadline.hosting._run_plan import RunPlan, finish_run, public, save
from threadline.hosting._runner import outcome_of, stream_turn
from threadline.hosting._sse import sse
from threadline.openai_wire import message_object
from threadline.types.contents import FunctionCallContent, TextContent
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["execute_stream", "replay"]


async def replay(state: ServerState, owner: str, run: dict[str, Any]) -> AsyncIterator[bytes]:
    """The events of a finished run: its messages whole, then its final state."""
    stored = await state.database.list_records(
        "message", owner=owner, parent=run["thread_id"], limit=10_000
    )
    events = [sse(run, "thread.run.created")]
    for message in reversed(stored):
        body = message.body or {}
        if body.get("run_id") != run["id"]:
            continue
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


async def execute_stream(
    state: ServerState, plan: RunPlan, key: Claim | None = None
) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for chunk in _run_events(state, plan, key):
            yield chunk
        finished = True
    finally:
        if key is not None and not finished:
            # A failed or abandoned stream frees its key, so a retry runs again.
            await key.release(state.database)


async def _run_events(state: ServerState, plan: RunPlan, key: Claim | None) -> AsyncIterator[bytes]:
    run = plan.run
    thread_id = plan.thread.id
    if run["status"] == "queued":
        yield sse(public(run), "thread.run.created")
        yield sse(public(run), "thread.run.queued")
    yield sse(
        public({**run, "status": "in_progress", "started_at": int(time.time())}),
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
    final = finish_run(run, outcome)
    await save(state, plan, final, outcome)
    if key is not None:
        await key.finish(state.database, public(final))
    kind = (
        "thread.run.requires_action"
        if final["status"] == "requires_action"
        else ("thread.run.completed")
    )
    yield sse(public(final), kind)
    yield sse("[DONE]", "done")
