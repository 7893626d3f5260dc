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

**In doubt, not dead-ended.** A server killed between the claim and the commit leaves a claim that
is never filled in, and a history that still ends with the waiting request. Past
``ServerConfig.approval_doubt_seconds`` such a claim is *in doubt*: the next answer takes it over
(``claim_record`` again with that bound, a compare-and-set on the claim's time, so exactly one
request wins even across server processes), does **not** run the call, and records the library's
in-doubt result for it (:func:`in_doubt_turn`, the same ``FunctionResultContent`` a thread's next
run records after a process died between answer and result). The turn then goes on with the model
as usual. A taken-over claim is never given back: its call may have run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from threadline.agents import IN_DOUBT, waiting_requests
from threadline.hosting.errors import ApiError
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.records import ThreadRecord
from threadline.types.contents import FunctionApprovalResponseContent, FunctionResultContent
from threadline.types.messages import ChatMessage, Role

__all__ = [
    "KIND",
    "ApprovalClaims",
    "answers_of",
    "approval_input",
    "claim_answers",
    "in_doubt_turn",
    "split_approvals",
    "why_not_waiting",
]

_KIND = "mcp_approval_response"

KIND = "approval"
"""The record kind of a claimed approval request; its id is the request's id."""

_NEVER_STALE = 1e12
"""Seconds: a first look at a claim never takes it over (only :func:`claim_answers`'s second,
deliberate claim does, and it knows the call is then in doubt)."""


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
    in_doubt: frozenset[str] = frozenset()
    """Ids of the answered requests whose claims were taken over from a request that never
    finished: their calls may have run, so they are never run nor given back."""

    @property
    def approves(self) -> bool:
        """Whether a call may have run: once it may have, the claim is never given back."""
        return bool(self.in_doubt) or any(a.approved for a in self.answers)

    def records(self, response_id: str | None, *, failed: bool = False) -> list[ThreadRecord]:
        """The claims, answered by ``response_id``: for the batch that stores its turn.

        ``None``: by a turn that failed and could not be stored.
        """
        body: dict[str, Any] = {"response": response_id, "failed": failed}
        return [ThreadRecord(kind=KIND, id=a.id, owner=self.owner, body=body) for a in self.answers]

    async def release(self, database: RecordDatabase) -> None:
        """Give the claims back (nothing ran), so the requests can be answered again.

        Claims taken over in doubt stay: their calls may have run, and giving them back would
        let the next answer run them again.
        """
        for answer in self.answers:
            if answer.id not in self.in_doubt:
                await asyncio.shield(database.release_claim(KIND, answer.id, owner=self.owner))


def _taken(request_id: str, found: ThreadRecord) -> ApiError:
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
    database: RecordDatabase,
    owner: str,
    answers: Sequence[FunctionApprovalResponseContent],
    *,
    doubt_after: float,
) -> ApprovalClaims | None:
    """Claim every answered request for this request alone; ``None`` when it answers none.

    A claim left unfinished for more than ``doubt_after`` seconds (its server stopped
    mid-answer) is taken over and marked in doubt (:attr:`ApprovalClaims.in_doubt`): the caller
    must record its outcome as unknown (:func:`in_doubt_turn`), never run it.

    Raises:
        ApiError: 409 while another request holds a claim, 400 once one answered it; the
            claims made so far are given back (all but those taken over) and nothing runs.
    """
    if not answers:
        return None
    in_doubt: set[str] = set()
    for index, answer in enumerate(answers):
        found = await database.claim_record(KIND, answer.id, owner=owner, stale_after=_NEVER_STALE)
        if (
            found is not None
            and found.body is None
            and time.time() - found.created_at > doubt_after
        ):
            # Claiming again with the bound is a compare-and-set on the claim's time: of the
            # requests that found it in doubt, one takes it over; the others find it fresh (409).
            found = await database.claim_record(
                KIND, answer.id, owner=owner, stale_after=doubt_after
            )
            if found is None:
                in_doubt.add(answer.id)
        if found is not None:
            taken = ApprovalClaims(owner, tuple(answers[:index]), frozenset(in_doubt))
            await taken.release(database)
            raise _taken(answer.id, found)
    return ApprovalClaims(owner, tuple(answers), frozenset(in_doubt))


def in_doubt_turn(
    claims: ApprovalClaims, turn_input: Sequence[ChatMessage]
) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """What to store before the agent runs, and the agent's input, for calls taken over in doubt.

    The first part is what the library's thread holds after a process died between an answer
    and its result and the next run went on: the answers (this request's, as a ``Role.TOOL``
    claim message) and then the in-doubt result of each call, whatever this answer says (an
    earlier answer's decision is unknown, so the call may have run). The agent then sees those
    calls finished and runs on; the answers not in doubt stay its input, run as usual.
    """
    if not claims.in_doubt:
        return [], list(turn_input)
    doubtful = [a for a in claims.answers if a.id in claims.in_doubt]
    rest = [a for a in claims.answers if a.id not in claims.in_doubt]
    claim = ChatMessage(Role.TOOL, contents=doubtful)
    outcome = ChatMessage(
        Role.TOOL,
        contents=[
            FunctionResultContent(call_id=a.function_call.call_id, exception=IN_DOUBT)
            for a in doubtful
        ],
    )
    remaining = [ChatMessage(Role.USER, contents=rest)] if rest else []
    return [claim, outcome], remaining
