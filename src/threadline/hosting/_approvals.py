"""Approvals over the Responses API: ``mcp_approval_response`` input items become answers.

The hosted agent's waiting calls are shown as ``mcp_approval_request`` output items (see
``openai_wire.responses``). The caller answers with ``mcp_approval_response`` items, which carry
only the request's id and the decision: the call they approve is looked up in the history the
request continues, so the caller can neither change its arguments nor answer a request of
another chain or conversation. Everything is checked before anything runs (a 400 otherwise).

**Exactly once across branches.** Continuing a chain from an older response (or a conversation's
response by id) branches, so two requests answering the same request may each append to a thread
of their own: the thread's version check cannot serialize them. So before anything runs, the
request claims each answered request id as an ``approval`` record (:func:`claim_answers`, one
insert that only one request can win, in the same database on every server process); the others
get a 409 (still running) or a 400 (answered) and run nothing. The winner's turn fills the record
(the response that answered it) in the batch that stores the turn. A turn that fails after an
approved call may have run keeps its claim (the call is never run again; see ``responses``); one
that ran nothing (refusals only, or a failure before the calls) releases it, so a retry answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from threadline.agents import waiting_requests
from threadline.hosting.errors import ApiError
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.records import ThreadRecord
from threadline.types.contents import FunctionApprovalResponseContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "KIND",
    "ApprovalClaims",
    "answers_of",
    "approval_input",
    "claim_answers",
    "split_approvals",
    "why_not_waiting",
]

_KIND = "mcp_approval_response"

KIND = "approval"
"""The record kind of a claimed approval request; its id is the request's id."""

_STOPPED_AFTER = 300.0
"""Seconds after which an unfinished claim is reported as in doubt rather than in progress."""

_NEVER_STALE = 1e12
"""Seconds: an approval claim is never taken over, even from a server that died mid-turn (its
call may have run: the request stays answered, in doubt, rather than run twice)."""


def _is_answer(item: object) -> bool:
    return isinstance(item, dict) and cast(dict[str, Any], item).get("type") == _KIND


def split_approvals(raw: object) -> tuple[list[dict[str, Any]], object]:
    """The input's ``mcp_approval_response`` items, and the rest of the input as it was."""
    if not isinstance(raw, list):
        return [], raw
    items = cast(list[object], raw)
    answers = [cast(dict[str, Any], i) for i in items if _is_answer(i)]
    if not answers:
        return [], items
    rest: list[object] = [i for i in items if not _is_answer(i)]
    return answers, rest


def approval_input(
    answers: Sequence[dict[str, Any]],
    new: list[ChatMessage],
    history: Sequence[ChatMessage],
    later: Sequence[ChatMessage] = (),
) -> list[ChatMessage]:
    """The turn's input: ``new``, or the user message answering the history's waiting calls.

    ``later`` are the messages the continued thread holds past ``history`` (a response chain
    continued from an older response): an answer stored there was given already.

    Raises:
        ApiError: 400 naming what is wrong: an answer beside other input, an unknown, foreign or
            already answered request, a waiting request left unanswered, or other input while
            a request waits.
    """
    given = {c.id for m in later for c in m.contents if type(c) is FunctionApprovalResponseContent}
    waiting = {
        w.request.id: w
        for w in waiting_requests(history)
        if w.claim is None and w.request.id not in given
    }
    if not answers:
        if waiting:
            raise ApiError(
                400,
                f"The history this request continues waits for approval of "
                f"{', '.join(repr(i) for i in waiting)}: answer with mcp_approval_response "
                "items before sending other input.",
                param="input",
                code="approval_waiting",
            )
        return new
    if new:
        raise ApiError.bad(
            "mcp_approval_response items go alone in 'input'; send other input in the next "
            "request.",
            param="input",
        )
    contents: list[FunctionApprovalResponseContent] = []
    for index, item in enumerate(answers):
        where = f"input[{index}]"
        request_id = item.get("approval_request_id")
        approve = item.get("approve")
        reason = item.get("reason")
        if not isinstance(request_id, str) or not isinstance(approve, bool):
            raise ApiError.bad(
                f"Invalid '{where}': an mcp_approval_response needs 'approval_request_id' (a "
                "string) and 'approve' (true or false).",
                param="input",
            )
        if reason is not None and not isinstance(reason, str):
            raise ApiError.bad(f"Invalid '{where}.reason': expected a string.", param="input")
        found = waiting.pop(request_id, None)
        if found is None:
            raise ApiError(
                400,
                f"Approval request '{request_id}' is not waiting in the history this request "
                "continues: it was answered already, or belongs to another response chain or "
                "conversation. Nothing was run.",
                param="input",
                code="approval_not_waiting",
            )
        contents.append(
            FunctionApprovalResponseContent(
                id=request_id,
                approved=approve,
                function_call=found.request.function_call,
                reason=reason,
            )
        )
    if waiting:
        missing = ", ".join(repr(i) for i in waiting)
        raise ApiError(
            400,
            f"Approval requests {missing} have no answer: answer every waiting request in one "
            "request. Nothing was run.",
            param="input",
            code="approval_missing",
        )
    return [ChatMessage(Role.USER, contents=contents)]


def answers_of(messages: Sequence[ChatMessage]) -> tuple[FunctionApprovalResponseContent, ...]:
    """The checked answers of a turn's input (what :func:`approval_input` made of the items)."""
    return tuple(
        c for m in messages for c in m.contents if type(c) is FunctionApprovalResponseContent
    )


@dataclass(frozen=True, slots=True)
class ApprovalClaims:
    """The approval requests one request answers, claimed for it alone."""

    owner: str
    answers: tuple[FunctionApprovalResponseContent, ...]

    @property
    def approves(self) -> bool:
        """Whether a call is approved: once it may have run, the claim is never given back."""
        return any(a.approved for a in self.answers)

    def records(self, response_id: str | None, *, failed: bool = False) -> list[ThreadRecord]:
        """The claims, answered by ``response_id``: for the batch that stores its turn.

        ``None``: by a turn that failed and could not be stored.
        """
        body: dict[str, Any] = {"response": response_id, "failed": failed}
        return [ThreadRecord(kind=KIND, id=a.id, owner=self.owner, body=body) for a in self.answers]

    async def release(self, database: RecordDatabase) -> None:
        """Give the claims back (nothing ran), so the requests can be answered again."""
        for answer in self.answers:
            await asyncio.shield(database.release_claim(KIND, answer.id, owner=self.owner))


def _taken(request_id: str, found: ThreadRecord) -> ApiError:
    if found.body is None and time.time() - found.created_at > _STOPPED_AFTER:
        return ApiError(
            400,
            f"Approval request '{request_id}' was claimed by a request that never finished (its "
            "server stopped while answering it, say): its call may have run, so it is not run "
            "again. Nothing was run.",
            param="input",
            code="approval_in_doubt",
        )
    if found.body is None:
        return ApiError(
            409,
            f"Approval request '{request_id}' is being answered by another request right now; "
            "read that response (or the conversation) for the outcome. Nothing was run.",
            param="input",
            code="approval_in_progress",
        )
    response = found.body.get("response")
    if found.body.get("failed"):
        where = (
            f"by response '{response}', which failed after its call may have run; continue "
            "from that response (or in the conversation)"
            if response
            else "by a request that failed after its call may have run"
        )
        return ApiError(
            400,
            f"Approval request '{request_id}' is not waiting: it was answered already {where}; "
            "the call is not run again. Nothing was run.",
            param="input",
            code="approval_not_waiting",
        )
    return ApiError(
        400,
        f"Approval request '{request_id}' is not waiting: it was answered already, by response "
        f"'{response}'. Nothing was run.",
        param="input",
        code="approval_not_waiting",
    )


async def why_not_waiting(
    database: RecordDatabase, owner: str, error: ApiError, raw: object
) -> ApiError:
    """``error``, or a clearer one naming the response that answered a request already."""
    if error.code != "approval_not_waiting":
        return error
    for item in split_approvals(raw)[0]:
        request_id = item.get("approval_request_id")
        if isinstance(request_id, str):
            found = await database.get_record(KIND, request_id, owner=owner)
            if found is not None and found.body is not None:
                return _taken(request_id, found)
    return error


async def claim_answers(
    database: RecordDatabase, owner: str, answers: Sequence[FunctionApprovalResponseContent]
) -> ApprovalClaims | None:
    """Claim every answered request for this request alone; ``None`` when it answers none.

    Raises:
        ApiError: 409 while another request holds a claim, 400 once one answered it; the
            claims made so far are given back and nothing runs.
    """
    if not answers:
        return None
    claims = ApprovalClaims(owner, tuple(answers))
    for index, answer in enumerate(answers):
        found = await database.claim_record(KIND, answer.id, owner=owner, stale_after=_NEVER_STALE)
        if found is not None:
            await ApprovalClaims(owner, tuple(answers[:index])).release(database)
            raise _taken(answer.id, found)
    return claims
