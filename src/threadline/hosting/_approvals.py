"""Approvals over the Responses API: ``mcp_approval_response`` input items become answers.

The hosted agent's waiting calls are shown as ``mcp_approval_request`` output items (see
``openai_wire.responses``). The caller answers with ``mcp_approval_response`` items, which carry
only the request's id and the decision: the call they approve is looked up in the history the
request continues, so the caller can neither change its arguments nor answer a request of
another chain or conversation. Everything is checked before anything runs (a 400 otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from threadline.agents import waiting_requests
from threadline.hosting.errors import ApiError
from threadline.types.contents import FunctionApprovalResponseContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["approval_input", "split_approvals"]

_KIND = "mcp_approval_response"


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
