"""``/v1/responses``: the Responses API, with responses and their histories kept server-side.

A response continues a conversation by ``previous_response_id`` (the history of that response) or
``conversation`` (a conversation object's items). With ``store`` (the default) the response and its
turn are stored, so later requests can continue from it; with ``store: false`` nothing is kept.

A chain of responses is one thread; each response records how far into it its history reaches
(``_upto``). Continuing from the newest response appends to the thread; continuing from an older
one (or from a response made in a conversation) branches: ``fork(at=...)`` in the batch that
commits the turn, so a branch exists only with its first turn.

A request answering approvals claims them first (``_approvals.claim_answers``), after its
``Idempotency-Key`` (a retry replays the answer rather than being refused as a second one). If
its turn then fails after an approved call may have run, what the turn holds (the answers, the
results) is stored as a ``failed`` response, so the call is never run again and the chain or
conversation goes on from there. An answer meeting a claim whose server was killed mid-answer
(in doubt past ``ServerConfig.approval_doubt_seconds``) takes it over and records the call's
outcome as unknown instead of running it (``_approvals.in_doubt_turn``, staged before the agent
runs), so the chain or conversation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.hosting._approvals import claim_answers, why_not_waiting
from threadline.hosting._idempotency import Claim, claim, idempotent
from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    ServerState,
    read_json,
    state_of,
)
from threadline.hosting._response_events import ResponseEventWriter, replay_events
from threadline.hosting._response_plan import ResponsePlan, history_gone, plan_response, take_over
from threadline.hosting._runner import (
    TurnOutcome,
    outcome_of,
    run_turn,
    stream_turn,
)
from threadline.hosting._sse import sse_response
from threadline.hosting._turns import (
    new_id,
    usage_json,
    visible_output,
)
from threadline.hosting.errors import ApiError
from threadline.openai_wire import messages_to_items
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.contents import (
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    TextContent,
)
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["routes"]


def _response_json(
    plan: ResponsePlan,
    response_id: str,
    created_at: int,
    *,
    status: str,
    output: list[dict[str, Any]],
    outcome: TurnOutcome | None,
) -> dict[str, Any]:
    body = plan.body
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": plan.previous.id if plan.previous else None,
        "conversation": {"id": plan.conversation.id} if plan.conversation else None,
        "store": plan.store,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
        "user": body.get("user"),
        "usage": usage_json(outcome.usage) if outcome else None,
    }


def _commit_to(
    plan: ResponsePlan,
    response: dict[str, Any],
    thread_id: str,
    done: ThreadRecord | None,
    batch: ThreadBatch | None = None,
) -> ThreadBatch:
    """The batch storing the held turn in ``thread_id`` with its response and key answer."""
    staged = plan.staged
    base = staged.expected_version if staged.expected_version is not None else plan.upto
    # Where this response's history and its input end in its thread (private, stripped on reads).
    marks = {
        "_upto": base + len(staged.staged),
        "_input_upto": base + plan.held_before + len(plan.turn.input),
    }
    batch = staged.stage_into(batch or ThreadBatch(), thread_id)
    batch.put(
        ThreadRecord(
            kind="response",
            id=response["id"],
            owner=plan.owner,
            thread_id=thread_id,
            body={**response, **marks},
        )
    )
    if plan.approvals is not None:  # the answered requests, answered by this very turn
        batch.put(*plan.approvals.records(response["id"], failed=response["status"] == "failed"))
    return batch.put(done) if done is not None else batch


async def _save(
    state: ServerState, plan: ResponsePlan, response: dict[str, Any], key: Claim | None
) -> None:
    """Store the turn, its response and its ``Idempotency-Key`` answer in one transaction."""
    database = state.database
    if not plan.store:
        if plan.approvals is not None:  # the calls ran: the requests stay answered
            await database.commit(ThreadBatch().put(*plan.approvals.records(response["id"])))
        if key is not None:
            await key.finish(database, response)
        return
    done = key.outcome(response) if key is not None else None
    conversation, previous = plan.conversation, plan.previous
    if conversation is not None:
        batch = _commit_to(plan, response, cast(str, conversation.thread_id), done)
        try:
            await database.commit(batch)
        except ConcurrentThreadUpdateError:
            raise ApiError(
                409,
                f"Conversation '{conversation.id}' changed while this response was generated; "
                "retry the request.",
                code="conversation_changed",
            ) from None
        return
    if previous is None:  # a new chain: a thread of its own
        batch = _commit_to(plan, response, new_id("chain"), done)
        await database.commit(batch)
        return
    source = cast(str, previous.thread_id)
    # Continuing from the newest response of a chain: append to its thread. A conversation's
    # thread is the conversation's own: a turn not made in it branches.
    if not (previous.body or {}).get("conversation"):
        batch = _commit_to(plan, response, source, done)
        try:
            await database.commit(batch)
            return
        except ConcurrentThreadUpdateError:
            pass  # the chain went on meanwhile: this turn branches from where it read
    branch = new_id("chain")
    fork = ThreadBatch().fork(source, branch, at=plan.upto)
    batch = _commit_to(plan, response, branch, done, fork)
    try:
        await database.commit(batch)
    except (ConcurrentThreadUpdateError, ValueError):
        # The source lost messages while this turn ran (its conversation was deleted).
        raise history_gone(previous) from None


def _is_claim(message: ChatMessage) -> bool:
    """The answers as the agent stores them before running approved calls (``carry_out``)."""
    return message.role == Role.TOOL and any(
        type(c) is FunctionApprovalResponseContent for c in message.contents
    )


async def _failed(
    state: ServerState, plan: ResponsePlan, response_id: str, created: int, error: BaseException
) -> None:
    """After a turn failed: give its approval claims back if nothing ran, else keep what ran.

    An approved call may have run once the turn holds its answers (the claim message). Its
    results, if any, are stored as a ``failed`` response, the requests recorded as answered by
    it: a retry is refused naming it, and the chain or conversation goes on from there. Shielded:
    a request cancelled mid-turn still records this.
    """
    claims = plan.approvals
    if claims is None:
        return
    database = state.database
    held = plan.staged.staged
    if not claims.approves or not any(_is_claim(m) for m in held):
        await claims.release(database)  # nothing ran: the requests can be answered again
        return
    output = messages_to_items(visible_output(held, plan.tools), output=True)
    response = _response_json(
        plan, response_id, created, status="failed", output=output, outcome=None
    )
    response["error"] = {
        "code": "server_error",
        "message": f"The turn failed after an approved call may have run: {error}",
    }
    try:
        await asyncio.shield(_save(state, plan, response, None))
    except Exception:  # the turn cannot be stored (e.g. its conversation changed): no response
        answered = ThreadBatch().put(*claims.records(None, failed=True))
        await asyncio.shield(database.commit(answered))


async def _create_blocking(
    state: ServerState, plan: ResponsePlan, key: Claim | None
) -> dict[str, Any]:
    response_id = new_id("resp")
    created = int(time.time())
    try:
        outcome = await run_turn(state.agent, plan.turn)
        output = messages_to_items(visible_output(outcome.messages, plan.tools), output=True)
        response = _response_json(
            plan, response_id, created, status="completed", output=output, outcome=outcome
        )
        await _save(state, plan, response, key)
    except BaseException as exc:
        await _failed(state, plan, response_id, created, exc)
        raise
    return response


async def _create_streaming(
    state: ServerState, plan: ResponsePlan, key: Claim | None
) -> AsyncIterator[bytes]:
    finished = False
    try:
        # Closed at once when the client goes: a failed turn records what ran before the key goes.
        async with contextlib.aclosing(_stream_events(state, plan, key)) as events:
            async for chunk in events:
                yield chunk
        finished = True
    finally:
        if key is not None and not finished:
            # A failed or abandoned stream frees its key, so a retry runs the turn.
            await key.release(state.database)


async def _stream_events(
    state: ServerState, plan: ResponsePlan, key: Claim | None
) -> AsyncGenerator[bytes, None]:
    response_id = new_id("resp")
    created = int(time.time())
    writer = ResponseEventWriter()
    started = _response_json(
        plan, response_id, created, status="in_progress", output=[], outcome=None
    )
    # Events made together go out in one write: fewer sends per response.
    yield writer.event("response.created", response=started) + writer.event(
        "response.in_progress", response=started
    )
    declared = {t.name for t in plan.tools}
    updates: list[AgentRunResponseUpdate] = []
    fallback_id = new_message_id()
    turn = stream_turn(state.agent, plan.turn)
    try:
        async for update in turn:
            updates.append(update)
            if update.role != Role.ASSISTANT:
                continue
            message_id = update.message_id or fallback_id
            for content in update.contents:
                if type(content) is TextContent and content.text:
                    yield b"".join(writer.text(message_id, content.text))
                elif type(content) is FunctionCallContent and content.name in declared:
                    message = ChatMessage(Role.ASSISTANT, contents=[content], message_id=message_id)
                    yield b"".join(writer.call(message, content))
                elif type(content) is FunctionApprovalRequestContent:
                    yield b"".join(writer.approval(content))
        closing = b"".join(writer.close_text())
        outcome = outcome_of(plan.turn, updates)
        final = _response_json(
            plan, response_id, created, status="completed", output=writer.output, outcome=outcome
        )
        await _save(state, plan, final, key)
    except BaseException as exc:  # failed, or abandoned by the client (GeneratorExit)
        await turn.aclose()  # the agent keeps what the turn did (in the staged store) first
        await _failed(state, plan, response_id, created, exc)
        raise
    yield closing + writer.event("response.completed", response=final)


async def create_response(request: Request) -> Response:
    """``POST /v1/responses``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)

    async def planned() -> ResponsePlan:
        # After the Idempotency-Key: a retry of an answered approval replays its answer.
        try:
            plan = await plan_response(body, state, owner)
        except ApiError as exc:
            raise await why_not_waiting(state.database, owner, exc, body.get("input")) from None
        plan.approvals = await claim_answers(
            state.database, owner, plan.answers, doubt_after=state.config.approval_doubt_seconds
        )
        if plan.approvals is not None and plan.approvals.in_doubt:
            await take_over(plan, state.database)
        return plan

    if body.get("stream"):
        key, done = await claim(request, state, owner, body)
        if done is not None:
            return sse_response(replay_events(done.body))
        try:
            plan = await planned()
        except BaseException:
            if key is not None:
                await key.release(state.database)
            raise
        return sse_response(_create_streaming(state, plan, key))

    async def work(key: Claim | None) -> dict[str, Any]:
        return await _create_blocking(state, await planned(), key)

    return await idempotent(request, state, owner, body, work)


async def get_response(request: Request) -> Response:
    """``GET /v1/responses/{id}``."""
    state, owner = state_of(request)
    response_id = request.path_params["response_id"]
    found = await state.database.get_record("response", response_id, owner=owner)
    if found is None or found.body is None:
        raise ApiError.not_found("response", response_id)
    return JSONResponse({k: v for k, v in found.body.items() if not k.startswith("_")})


async def delete_response(request: Request) -> Response:
    """``DELETE /v1/responses/{id}``: the response goes; its chain's items stay for others."""
    state, owner = state_of(request)
    response_id = request.path_params["response_id"]
    database = state.database
    if await database.get_record("response", response_id, owner=owner) is None:
        raise ApiError.not_found("response", response_id)
    await database.commit(ThreadBatch().delete_record("response", response_id, owner=owner))
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: Request) -> Response:
    """``GET /v1/responses/{id}/input_items``: the history the response answered."""
    from threadline.hosting._turns import paginate, stored_items

    state, owner = state_of(request)
    response_id = request.path_params["response_id"]
    found = await state.database.get_record("response", response_id, owner=owner)
    if found is None or found.thread_id is None or found.body is None:
        raise ApiError.not_found("response", response_id)
    upto = int(found.body.get("_input_upto", found.body.get("_upto", 0)))
    stored = (await state.database.store(found.thread_id).list_messages())[:upto]
    return JSONResponse(paginate(stored_items(stored), dict(request.query_params)))


def routes() -> list[Route]:
    """The Responses routes."""
    return [
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    ]
