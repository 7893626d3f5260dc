"""A parsed ``POST /v1/responses``: its input, options, and the thread it continues.

Kept apart from the route handlers in ``responses.py``: this part decides *what* a request may
continue (a response's history, a conversation's thread) and refuses what OpenAI refuses, before
anything runs or is stored. The history is read through the thread's store; the agent then runs
on a ``StagedStore`` over it (see ``_runner``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.hosting._approvals import (
    ApprovalClaims,
    answers_of,
    approval_input,
    in_doubt_turn,
    split_approvals,
)
from threadline.hosting._request import ServerState, optional, optional_object
from threadline.hosting._runner import TurnRequest, memory_user_id
from threadline.hosting._turns import (
    client_tools,
    decode_messages,
    require_calls_for_results,
    require_tool_results,
    run_options,
)
from threadline.hosting.errors import ApiError
from threadline.openai_wire import items_to_messages
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.memory import ChatMessageList
from threadline.threads.stores.records import ThreadRecord
from threadline.threads.stores.staged import StagedStore
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionApprovalResponseContent
from threadline.types.messages import ChatMessage

__all__ = ["ResponsePlan", "history_gone", "plan_response", "take_over"]


@dataclass(slots=True, kw_only=True)
class ResponsePlan:
    """A parsed ``POST /v1/responses``: what to run and where its turn goes."""

    owner: str
    body: dict[str, Any]
    turn: TurnRequest
    staged: StagedStore
    """The store the agent runs on: its turn is held there until ``responses._save`` commits."""
    tools: list[FunctionTool]
    store: bool
    model: str
    previous: ThreadRecord | None
    upto: int = 0
    """How many messages of the continued thread the history holds (0 for a new chain)."""
    conversation: ThreadRecord | None
    answers: tuple[FunctionApprovalResponseContent, ...] = ()
    """The approval requests this request answers (checked against the history)."""
    approvals: ApprovalClaims | None = None
    """Their claims, once taken (``_approvals.claim_answers``): stored with the turn."""
    held_before: int = 0
    """Messages staged before the agent ran: the answers taken over in doubt and their results
    (``_approvals.in_doubt_turn``); part of the response's input."""


def history_gone(previous: ThreadRecord) -> ApiError:
    conversation = cast(dict[str, Any], (previous.body or {}).get("conversation") or {})
    where = f"conversation '{conversation.get('id')}', which was deleted" if conversation else (
        "a history that no longer exists"
    )  # fmt: skip
    return ApiError(
        400,
        f"Response '{previous.id}' was made in {where}; it cannot be continued. Continue from "
        "another response, or start a new conversation.",
        param="previous_response_id",
        code="history_deleted",
    )


async def _conversation_lives(state: ServerState, owner: str, previous: ThreadRecord) -> bool:
    """Whether the response was made in a conversation that still exists.

    Its history is then that conversation's items as they are now, shorter when items were
    deleted from it since; a response whose items are gone otherwise cannot be continued.
    """
    conversation = cast(dict[str, Any], (previous.body or {}).get("conversation") or {})
    conversation_id = conversation.get("id")
    if not isinstance(conversation_id, str):
        return False
    found = await state.database.get_record("conversation", conversation_id, owner=owner)
    return found is not None


async def plan_response(body: dict[str, Any], state: ServerState, owner: str) -> ResponsePlan:
    """Check ``body`` and read the history it continues; nothing runs or is stored yet."""
    if "input" not in body:
        raise ApiError.bad("Missing required parameter: 'input'.", param="input")
    answers, raw_input = split_approvals(body["input"])
    new = decode_messages(items_to_messages, raw_input, "input")
    instructions = optional(body, "instructions", str)
    keep = optional(body, "store", bool)
    optional(body, "stream", bool)
    optional_object(body, "metadata")
    model = optional(body, "model", str) or state.config.model_name
    previous_id = optional(body, "previous_response_id", str)
    conversation_ref = body.get("conversation")
    conversation_id: str | None
    if conversation_ref is None or isinstance(conversation_ref, str):
        conversation_id = conversation_ref
    elif isinstance(conversation_ref, dict) and isinstance(
        cast(dict[str, Any], conversation_ref).get("id"), str
    ):
        conversation_id = cast(dict[str, Any], conversation_ref)["id"]
    else:
        raise ApiError.bad("'conversation' must be an id or {\"id\": ...}.", param="conversation")
    if previous_id and conversation_id:
        raise ApiError.bad(
            "Use 'previous_response_id' or 'conversation', not both.", param="previous_response_id"
        )
    database = state.database
    previous = conversation = None
    history: list[ChatMessage] = []
    later: list[ChatMessage] = []
    store: ChatMessageStore = ChatMessageList()  # a new chain: nothing to read
    upto: int | None = None
    if previous_id:
        previous = await database.get_record("response", previous_id, owner=owner)
        if previous is None or previous.thread_id is None or previous.body is None:
            raise ApiError.not_found("response", previous_id, param="previous_response_id")
        store = database.store(previous.thread_id)
        wanted = int(previous.body.get("_upto", 0))
        stored = await store.list_messages()
        history, later = stored[:wanted], stored[wanted:]
        if len(history) != wanted and not await _conversation_lives(state, owner, previous):
            raise history_gone(previous)
        upto = len(history)
    elif conversation_id:
        conversation = await database.get_record("conversation", conversation_id, owner=owner)
        if conversation is None or conversation.thread_id is None:
            raise ApiError.not_found("conversation", conversation_id, param="conversation")
        store = database.store(conversation.thread_id)
        history = await store.list_messages()
    # Answers to approvals are checked against the history before anything runs.
    new = approval_input(answers, new, history, later)
    tools = client_tools(body, nested=False)
    options = run_options(body, max_tokens_key="max_output_tokens")
    require_calls_for_results(history, new, "input")
    require_tool_results([*history, *new], "input", agent=state.agent)
    staged = StagedStore(store, upto=upto)
    turn = TurnRequest(
        store=staged,
        history=history,
        input=new,
        instructions=instructions,
        tools=tools,
        options=options,
        user_id=memory_user_id(owner, options.get("user")),
        thread_id=conversation.thread_id if conversation is not None else None,
    )
    return ResponsePlan(
        owner=owner,
        body=body,
        turn=turn,
        staged=staged,
        tools=tools,
        store=keep is not False,
        model=model,
        previous=previous,
        upto=len(history),
        conversation=conversation,
        answers=answers_of(new) if answers else (),
    )


async def take_over(plan: ResponsePlan, database: RecordDatabase) -> None:
    """Stage the in-doubt answers and their unknown outcome ahead of the agent's turn.

    Checked against the history the request read: they commit with the turn, in its batch.

    Raises:
        ApiError: 409 when that history changed meanwhile; the claims not in doubt are given
            back, those in doubt stay claimed (their calls may have run).
    """
    claims = plan.approvals
    assert claims is not None
    held, rest = in_doubt_turn(claims, plan.turn.input)
    try:
        await plan.staged.add_messages(held, expected_version=plan.upto)
    except ConcurrentThreadUpdateError:
        await claims.release(database)  # the fresh ones; those in doubt stay claimed
        raise ApiError(
            409,
            "The history this request continues changed while it was read; retry the request.",
            code="conversation_changed",
        ) from None
    plan.held_before = len(held)
    plan.turn = dataclasses.replace(plan.turn, input=rest)
