"""Calls that wait for a person's approval: asking, checking the answer, and carrying it out.

A tool with ``approval_mode`` (see :class:`~threadline.tools.FunctionTool`) is never run on the
model's say-so alone. The guarantees, all kept by the thread itself (no second persistence layer):

* **Asking.** A model answer whose calls need approval ends the run like a deferred call: ordinary
  calls of the same answer run and their results are stored, and a
  :class:`FunctionApprovalRequestContent` per waiting call is added to the assistant message that
  holds the calls. A restored thread therefore shows what waits, in ``list_messages()``.
* **Answering.** The next run's input is one ``Role.USER`` message of
  :class:`FunctionApprovalResponseContent` s, one per waiting request. It is checked against the
  thread before anything is written or run (:func:`check_answers`): an unknown or already answered
  request id (a second answer, an answer on another thread), a changed call id, name or arguments,
  or a request left unanswered is a ``UsageError`` and nothing happens.
* **Exactly once.** The answer is stored first, as a ``Role.TOOL`` message of the responses (the
  *claim*), with the store's version check; only then do approved calls run, and their results
  (and refusals, with the reason, for the model) open the turn's input, stored with it. Two
  processes answering at once cannot both run the call: the second claim fails with
  ``ConcurrentThreadUpdateError``. A process that dies between claim and result leaves the call
  *in doubt*; the thread's next run records it as such, never running it again.

Every chat wire skips approval contents and empty tool messages, so the stored history is always
one a chat API accepts: calls, then their results, then the model's next answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from threadline import _tracing as tr
from threadline.agents._spans import traced_append
from threadline.agents._tool_calls import run_function_calls
from threadline.exceptions import UsageError
from threadline.threads.thread import AgentThread
from threadline.tools import FunctionTool
from threadline.types.contents import (
    Content,
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    FunctionResultContent,
)
from threadline.types.messages import ChatMessage, MessageView, Role
from threadline.types.responses import AgentRunResponse

if TYPE_CHECKING:
    from threadline.agents._turn import Turn

__all__ = [
    "Resolution",
    "ask_approval",
    "carry_out",
    "check_answers",
    "check_store",
    "may_answer",
    "needs_approval",
    "response_of",
    "waiting_requests",
]

_TOOL = Role.TOOL
_ASSISTANT = Role.ASSISTANT

IN_DOUBT = (
    "the outcome of this approved call is unknown: the run that executed it stopped before "
    "recording its result; it was not run again"
)
"""The result an answered call gets when it may have run but its result was never stored: the
thread's next run records it (here) and so does ``threadline serve`` (an answer whose server was
killed mid-call). One wording, so a model (or a reader of the history) meets one sentence."""


def needs_approval(call: FunctionCallContent, tools: Mapping[str, FunctionTool]) -> bool:
    """Whether ``call`` must wait for a person (deferred and unknown tools never do)."""
    found = tools.get(call.name)
    if found is None or found.approval_mode == "never_require" or found.is_deferred:
        return False
    try:
        arguments = call.parse_arguments()
    except ValueError:  # malformed arguments never reach the tool: the loop reports them
        return found.approval_mode == "always_require"
    return found.needs_approval(arguments)


def ask_approval(produced: list[ChatMessage], calls: Sequence[FunctionCallContent]) -> ChatMessage:
    """Add a request per call to the last produced message holding calls; return that message."""
    for index in range(len(produced) - 1, -1, -1):
        message = produced[index]
        if message.role == Role.ASSISTANT and any(
            type(c) is FunctionCallContent for c in message.contents
        ):
            requests = [FunctionApprovalRequestContent(function_call=c) for c in calls]
            asked = message.replace(contents=[*message.contents, *requests])
            produced[index] = asked
            return asked
    raise AssertionError("approval asked for calls that no produced message holds")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A request of the thread's last call message that has no result yet."""

    request: FunctionApprovalRequestContent
    claim: FunctionApprovalResponseContent | None
    """The stored answer, when one was claimed but its call never finished (in doubt)."""


def _last(history: Sequence[ChatMessage]) -> ChatMessage | None:
    if type(history) is MessageView:
        return history.last()
    return history[-1] if history else None


def may_answer(history: Sequence[ChatMessage], input_messages: Sequence[ChatMessage]) -> bool:
    """False when this turn surely neither answers nor meets a request: plain text both sides.

    Asked every turn, so it looks at one message of each side (a few hundred nanoseconds).
    """
    for message in input_messages:
        if message.plain_text is None:
            return True
    if type(history) is MessageView:  # inlined _last: this runs on every turn
        last = history.last()
    else:
        last = history[-1] if history else None
    return last is not None and last.plain_text is None


def waiting_requests(history: Sequence[ChatMessage]) -> list[Waiting]:
    """The approval requests of the thread's last call message that have no result yet.

    Looks only at the end of the thread (the last assistant message and the tool messages after
    it), so a turn pays a few comparisons whatever the thread's length.
    """
    last = _last(history)
    if last is None or last.plain_text is not None:  # most turns: an answer, a question
        return []
    index = len(history) - 1
    while index >= 0 and history[index].role is _TOOL:
        index -= 1
    if index < 0:
        return []
    asked = history[index]
    if asked.role is not _ASSISTANT or asked.plain_text is not None:
        return []
    requests = [c for c in asked.contents if type(c) is FunctionApprovalRequestContent]
    if not requests:
        return []
    done: set[str] = set()
    claims: dict[str, FunctionApprovalResponseContent] = {}
    for later in range(index + 1, len(history)):  # no slice: a view would copy the thread
        for content in history[later].contents:
            if type(content) is FunctionResultContent:
                done.add(content.call_id)
            elif type(content) is FunctionApprovalResponseContent:
                claims[content.id] = content
    return [Waiting(r, claims.get(r.id)) for r in requests if r.function_call.call_id not in done]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a turn does about approvals before its first model call."""

    answers: tuple[FunctionApprovalResponseContent, ...]
    """The checked answers of this turn's input, in the order they were asked."""
    claim: ChatMessage | None
    """The answers as the tool message to store first; ``None`` when there are none."""
    in_doubt: tuple[FunctionApprovalResponseContent, ...]
    """Answers claimed by an earlier run whose calls never finished."""


def _describe(call: FunctionCallContent) -> str:
    return f"{call.name}({call.arguments}) [call {call.call_id!r}]"


def check_answers(
    thread: AgentThread, history: Sequence[ChatMessage], input_messages: list[ChatMessage]
) -> Resolution | None:
    """Check this turn's input against the requests waiting on the thread; ``None``: none.

    Raises:
        UsageError: the input answers nothing that waits, answers something twice or with a
            changed call, leaves a request unanswered, or says something else while requests
            wait. Nothing was written or run.
    """
    answers = [
        c
        for m in input_messages
        if m.plain_text is None
        for c in m.contents
        if type(c) is FunctionApprovalResponseContent
    ]
    waiting = waiting_requests(history)
    if not waiting and not answers:
        return None
    in_doubt = tuple(w.claim for w in waiting if w.claim is not None)
    open_requests = {w.request.id: w.request for w in waiting if w.claim is None}
    if not answers:
        if open_requests:
            listed = "; ".join(_describe(r.function_call) for r in open_requests.values())
            raise UsageError(
                f"thread {thread.id!r} waits for approval of {listed}; answer every request "
                "(response.user_input_requests, or the FunctionApprovalRequestContent in the "
                "thread's last assistant message) with request.create_response(approved=...) "
                "in one Role.USER message before sending anything else"
            )
        return Resolution(answers=(), claim=None, in_doubt=in_doubt)
    others = [
        m
        for m in input_messages
        if any(type(c) is not FunctionApprovalResponseContent for c in m.contents)
    ]
    if others or len(input_messages) != 1 or input_messages[0].role != Role.USER:
        raise UsageError(
            "answers to approval requests go alone, in one Role.USER message of "
            "FunctionApprovalResponseContents; send any other message in the next run"
        )
    seen: set[str] = set()
    for answer in answers:
        request = open_requests.get(answer.id)
        if request is None:
            waits = ", ".join(repr(i) for i in open_requests) or "none"
            raise UsageError(
                f"the answer to approval request {answer.id!r} ({_describe(answer.function_call)}) "
                f"matches no request waiting on thread {thread.id!r} (waiting: {waits}): it was "
                "already answered, or was asked on another thread; nothing was run"
            )
        if answer.id in seen:
            raise UsageError(
                f"approval request {answer.id!r} is answered twice in one message; answer it once"
            )
        seen.add(answer.id)
        if answer.function_call != request.function_call:
            raise UsageError(
                f"the answer to approval request {answer.id!r} is for "
                f"{_describe(answer.function_call)}, but the request was for "
                f"{_describe(request.function_call)}; an approval holds only for the exact call "
                "asked about: answer with request.create_response(approved=...); nothing was run"
            )
    missing = [r for i, r in open_requests.items() if i not in seen]
    if missing:
        listed = "; ".join(_describe(r.function_call) for r in missing)
        raise UsageError(
            f"approval requests are answered together, in one message; {listed} has no answer "
            "yet; nothing was run"
        )
    order = list(open_requests)
    ordered = tuple(sorted(answers, key=lambda a: order.index(a.id)))
    claim = ChatMessage(Role.TOOL, contents=ordered, message_id=input_messages[0].message_id)
    return Resolution(answers=ordered, claim=claim, in_doubt=in_doubt)


def check_store(thread: AgentThread, tools: Mapping[str, FunctionTool]) -> None:
    """Refuse, before any model call, approvals on a thread that keeps no messages here.

    A service-managed thread holds only an id, so a request could not be stored with it.
    """
    if thread.message_store is not None:
        return
    needing = [t.name for t in tools.values() if t.approval_mode != "never_require"]
    if needing:
        raise UsageError(
            f"tools {needing} may need approval, but thread {thread.id!r} is kept by a service, "
            "so a waiting approval could not be stored with it; use a client that keeps history "
            "locally (e.g. OpenAIResponsesClient(store=False)) or drop approval_mode"
        )


def _refusal(answer: FunctionApprovalResponseContent) -> FunctionResultContent:
    why = f": {answer.reason}" if answer.reason else ""
    return FunctionResultContent(
        call_id=answer.function_call.call_id,
        exception=f"the user refused this call to {answer.function_call.name!r}{why}",
    )


async def carry_out(turn: Turn) -> tuple[Sequence[ChatMessage], ChatMessage]:
    """Claim the turn's answers, run what was approved; return the first request and results.

    The claim is appended at once, checked against the thread's version, so a second answer
    racing this one (another process) fails before its calls run. The results become the turn's
    input: stored with the turn's answer in its one append, or kept (marked unanswered) if the
    model call then fails, so a result that exists is never lost.
    """
    resolution = turn.resolution
    assert resolution is not None
    if resolution.claim is not None:
        await _append(turn, resolution.claim)
    results: dict[str, Content] = {}
    for answer in resolution.in_doubt:
        call_id = answer.function_call.call_id
        results[call_id] = (
            FunctionResultContent(call_id=call_id, exception=IN_DOUBT)
            if answer.approved
            else _refusal(answer)
        )
    approved = [a.function_call for a in resolution.answers if a.approved]
    ran: dict[str, Content] = {}
    if approved:
        with tr.activated(turn.span):  # each call's execute_tool span nests under the run
            message = await run_function_calls(approved, turn.tools, traced=turn.span is not None)
        ran = {c.call_id: c for c in message.contents if type(c) is FunctionResultContent}
    for answer in resolution.answers:
        call_id = answer.function_call.call_id
        results[call_id] = ran[call_id] if answer.approved else _refusal(answer)
    outcome = ChatMessage(Role.TOOL, contents=list(results.values()), author_name=turn.author_name)
    turn.input = [outcome, *turn.input]
    return turn.first_request(), outcome


def response_of(turn: Turn) -> AgentRunResponse:
    """What ``agent.run`` returns: with the results of answered approvals, which the run made."""
    response = turn.response()
    if turn.resolution is None:
        return response
    return replace(response, messages=(turn.input[0], *response.messages))


async def _append(turn: Turn, message: ChatMessage) -> None:
    """Append one message, checked against (and advancing) the turn's version."""
    assert turn.store is not None
    await traced_append(
        turn.store, turn.thread.id, [message], expected_version=turn.version, parent=turn.span
    )
    if turn.version is not None:
        turn.version += 1
