"""``Handoff``: one agent at a time has the conversation and may hand it to another.

Each agent is offered ``transfer_to_<name>`` tools for the agents it may hand to (all others by
default, or those of ``graph``). They are *deferred* tools: calling one ends the agent's run with
the call pending; the runner answers it in that agent's own thread (so the call and its result are
recorded as a pair, and the thread stays well-formed), records both in the transcript, and the
target continues the same user turn. The agent that last had control answers the next user turn.

What an agent sees when it takes over is chosen by ``history``: ``"full"`` (everything since it last
spoke, other agents' tool traffic written as text), ``"text"`` (tool traffic dropped) or a callable
that gets the full view and returns what to show. Each message is delivered to an agent once: the
runner keeps, per agent, how much of the transcript it has been given, and saves that with the
thread, so a resumed handoff never shows an agent something twice. A run that fails (the model
raised, a stream was abandoned) still keeps what it was shown in the agent's thread, as any failed
run keeps its input, so it counts as given: the retry sends nothing new and the model sees it
once, in the history.

Loop guard: at most ``max_handoffs`` per user turn, and at most ``max_bounces`` returns along the
same pair of agents (a -> b -> a counts one); past either, the call is answered with a refusal
(keeping the thread well-formed) and ``GroupChatError`` says which agents looped.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline import _tracing as tr
from threadline.agents.chat_agent import ChatAgent
from threadline.compaction import Compaction
from threadline.exceptions import GroupChatError, ThreadStateError, UsageError
from threadline.memory.provider import ContextProvider
from threadline.multiagent._relay import relay, skip_tool_messages
from threadline.multiagent._runner import (
    MultiAgentInput,
    MultiAgentResponse,
    MultiAgentRunner,
    _Finished,
    approval_answers,
    approval_requests,
    check_rounds,
)
from threadline.multiagent.thread import MultiAgentThread, RunnerKind
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.thread import AgentThread
from threadline.tools import FunctionTool
from threadline.types.contents import (
    FunctionApprovalRequestContent,
    FunctionCallContent,
    FunctionResultContent,
)
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["Handoff", "HistoryView"]

HistoryView = Literal["full", "text"] | Callable[[Sequence[ChatMessage]], Sequence[ChatMessage]]
"""What an agent taking over sees of the messages it has not seen yet."""

_PREFIX = "transfer_to_"


def _transfer_tool(target: ChatAgent) -> FunctionTool:
    about = f": {target.description}" if target.description else ""
    return FunctionTool(
        name=_PREFIX + (target.name or ""),
        description=f"Hand the conversation to {target.name}{about}. They answer the user next.",
        parameters={"type": "object", "properties": {}},
    )


class _Bookkeeping(BaseModel):
    """A handoff's ``runner_state``: what each agent was shown, and this user turn's handoffs."""

    model_config = ConfigDict(extra="forbid", strict=True)
    seen: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: {})
    """Per agent, how many transcript messages it has been given."""
    handoffs: Annotated[int, Field(ge=0)] = 0
    pairs: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: {})
    """Per pair of agents (``"a|b"``), handoffs between them in this user turn."""


async def _delivered(own: AgentThread, shown: Sequence[ChatMessage]) -> bool:
    """Whether a speaker's thread already holds what it was shown (a failed run keeps its input).

    Its input is one append, so the last message tells. A service-managed thread cannot be read
    back: whether the service kept the input of a failed call is unknown, so it is shown again.
    """
    if not shown:
        return True
    store = own.message_store
    if store is None:
        return False
    last = shown[-1].message_id
    return any(m.message_id == last for m in reversed(await store.list_messages()))


class Handoff(MultiAgentRunner):
    """Agents that hand the conversation to each other (OpenAI-Agents-style handoffs).

    Args:
        agents: ``ChatAgent`` s with distinct names.
        start: the agent that answers first (name or agent); the first agent by default.
        history: what an agent taking over sees (see the module docs).
        graph: ``{name: [names it may hand to]}``; every other agent by default.
        max_handoffs: handoffs allowed within one user turn.
        max_bounces: returns along one pair of agents allowed within one user turn.
        max_rounds: agent turns one ``run`` may take.
        context_providers: memory consulted on behalf of every agent (see ``allow_user_data``).
        allow_user_data: the agents on whose behalf providers with ``holds_user_data`` are
            consulted; none by default in a process.
        transcript_store_factory: where the shared transcript lives; in memory by default.
        compaction: the default ``Compaction`` of every agent that has none of its own.
    """

    _kind: RunnerKind = "handoff"

    def __init__(
        self,
        agents: Sequence[ChatAgent],
        *,
        start: str | ChatAgent | None = None,
        history: HistoryView = "full",
        graph: Mapping[str, Sequence[str]] | None = None,
        max_handoffs: int = 8,
        max_bounces: int = 2,
        max_rounds: int = 10,
        name: str | None = None,
        context_providers: Sequence[ContextProvider] | None = None,
        allow_user_data: Sequence[str] | None = None,
        transcript_store_factory: Callable[[], ChatMessageStore] | None = None,
        compaction: Compaction | None = None,
    ) -> None:
        super().__init__(
            agents,
            name=name,
            filters=None,
            context_providers=context_providers,
            allow_user_data=allow_user_data if allow_user_data is not None else (),
            transcript_store_factory=transcript_store_factory,
            compaction=compaction,
            what="handoff",
        )
        names = list(self.agents)
        start_name = start.name if isinstance(start, ChatAgent) else start
        if start_name is not None and start_name not in self.agents:
            raise UsageError(f"start {start_name!r} is not one of the agents ({', '.join(names)})")
        self.start = start_name or names[0]
        if history not in ("full", "text") and not callable(history):
            raise UsageError(f"history must be 'full', 'text' or a callable, got {history!r}")
        self.history: HistoryView = history
        routes = {n: [t for t in names if t != n] for n in names}
        for source, targets in (graph or {}).items():
            bad = [x for x in (source, *targets) if x not in self.agents]
            if bad:
                raise UsageError(f"graph names {bad}, which are not agents ({', '.join(names)})")
            routes[source] = list(targets)
        self.graph = routes
        for limit, label in ((max_handoffs, "max_handoffs"), (max_bounces, "max_bounces")):
            if type(limit) is not int or limit < 0:
                raise ValueError(f"{label} must be an int >= 0, got {limit!r}")
        self.max_handoffs = max_handoffs
        self.max_bounces = max_bounces
        self.max_rounds = check_rounds(max_rounds)
        self._tools = {
            n: [_transfer_tool(self.agents[t]) for t in targets] for n, targets in routes.items()
        }

    def __repr__(self) -> str:
        return f"Handoff(name={self.name!r}, agents={list(self.agents)!r}, start={self.start!r})"

    async def run(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: MultiAgentThread | None = None,
        max_rounds: int | None = None,
    ) -> MultiAgentResponse:
        """Add the user's turn and let the agent in control answer, handing off as it decides.

        Without input, a turn stopped midway (by ``max_rounds``) continues where it stopped.

        Raises:
            GroupChatError: handoffs passed ``max_handoffs`` or bounced past ``max_bounces``.
        """
        return await self._run(messages, thread, max_rounds=max_rounds)

    def run_stream(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: MultiAgentThread | None = None,
        max_rounds: int | None = None,
    ) -> AsyncGenerator[AgentRunResponseUpdate, None]:
        """As ``run``, yielding each agent's output as it is generated, with its ``author_name``."""
        return self._run_stream(messages, thread, max_rounds=max_rounds)

    def _check_runner_state(self, state: dict[str, Any], *, version: int) -> None:
        try:
            parsed = _Bookkeeping.model_validate(state)
        except ValidationError as exc:
            problems = "; ".join(
                f"runner_state.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors()
            )
            raise ThreadStateError(f"malformed handoff state: {problems}") from None
        for name, count in parsed.seen.items():
            if name not in self.agents:
                raise ThreadStateError(f"field 'runner_state.seen.{name}': not a participant")
            if count > version:
                raise ThreadStateError(
                    f"field 'runner_state.seen.{name}' is {count}, past the transcript's "
                    f"{version} messages; restore the state from an intact copy"
                )

    def _view(self, unseen: list[ChatMessage], name: str) -> list[ChatMessage]:
        """What ``name`` is shown of transcript messages it has not been given yet.

        Its own messages are in its thread already; the others' are relayed per author (user-role,
        named, tool traffic as text), then narrowed by ``history``.
        """
        others = [m for m in unseen if m.role == Role.USER or m.author_name != name]
        keep = skip_tool_messages if self.history == "text" else None
        shown: list[ChatMessage] = []
        for author, batch in itertools.groupby(others, key=lambda m: m.author_name):
            shown.extend(relay(list(batch), author=author, keep=keep))
        if callable(self.history):
            return list(self.history(shown))
        return shown

    async def _events(
        self, messages: list[ChatMessage], thread: MultiAgentThread, *, stream: bool, **kw: Any
    ) -> AsyncGenerator[AgentRunResponseUpdate | _Finished, None]:
        limit: int | None = kw.get("max_rounds")
        limit = self.max_rounds if limit is None else check_rounds(limit)
        state = thread.runner_state
        seen: dict[str, int] = state.setdefault("seen", {})
        # Answers to approvals go to the agent that asked, which continues its turn.
        answers = approval_answers(thread, messages)
        if messages and not answers:
            await self._claim(thread)
            await self._record(thread, messages)
            # The agent in control: a handoff's target not yet run, else the last speaker.
            thread.next_speaker = thread.next_speaker or thread.last_speaker or self.start
            state["handoffs"] = 0
            state["pairs"] = {}
        produced: list[ChatMessage] = []
        rounds = 0
        while thread.next_speaker is not None:
            if rounds >= limit:
                yield _Finished(produced, "max_rounds")
                return
            speaker = thread.next_speaker
            await self._claim(thread)
            transcript = await thread.messages()
            shown = answers or self._view(transcript[seen.get(speaker, 0) :], speaker)
            answers = []
            turn: list[ChatMessage] = []
            span = self._turn_span(thread, speaker)
            try:
                # Closed before the check below: an abandoned speaker's turn stores its input
                # only as it closes, and the check must see that input.
                async with aclosing(
                    self._turn_events(
                        thread, speaker, shown, span, stream=stream, tools=self._tools[speaker]
                    )
                ) as events:
                    async for event in events:
                        if isinstance(event, _Finished):
                            turn = event.messages
                        else:
                            yield event
            except BaseException as exc:
                tr.end_error(span, exc)
                # A failed or abandoned run keeps its input in the speaker's thread; a retry
                # must not show (and store) it a second time.
                if await _delivered(thread.participants[speaker], shown):
                    seen[speaker] = len(transcript)
                raise
            with tr.activated(span):
                await self._record(thread, turn)
            produced.extend(turn)
            thread.last_speaker = speaker
            thread.rounds_used += 1
            rounds += 1
            asked = approval_requests(turn)
            thread.awaiting = speaker if asked else None
            target, results, error = self._answer_transfers(thread, speaker, turn, asked)
            if results is not None:
                with tr.activated(span):
                    await self.agents[speaker].add_chat_message(
                        results, thread=thread.participants[speaker]
                    )
                    await self._record(thread, [results])
                produced.append(results)
            if asked:  # the whole run pauses; this agent continues once a person answers
                seen[speaker] = thread.version
                if span is not None:
                    span.end()
                yield _Finished(produced, "pending")
                return
            seen[speaker] = thread.version
            thread.next_speaker = target
            if span is not None:
                if target is not None:
                    span.set_attribute(tr.HANDOFF_FROM, speaker)
                    span.set_attribute(tr.HANDOFF_TO, target)
                if error is not None:
                    span.set_status(tr.Status(tr.StatusCode.ERROR, error))
                span.end()
            if error is not None:
                raise GroupChatError(error)
        yield _Finished(produced, "done")

    def _answer_transfers(
        self,
        thread: MultiAgentThread,
        speaker: str,
        turn: Sequence[ChatMessage],
        asked: Sequence[FunctionApprovalRequestContent] = (),
    ) -> tuple[str | None, ChatMessage | None, str | None]:
        """The target (or ``None``), the tool message answering the pending calls, and an error.

        Every pending call is answered, even when the handoff is refused, so the speaker's thread
        never holds a call without its result. Calls waiting for approval (``asked``) are left
        to the person; a handoff asked beside them is declined (the agent may ask again once
        they are answered), so no call is left without a result when the turn resumes.
        """
        answered = {c.call_id for m in turn for c in m.contents if type(c) is FunctionResultContent}
        answered |= {r.function_call.call_id for r in asked}
        pending = [
            c
            for m in turn
            for c in m.contents
            if type(c) is FunctionCallContent and c.call_id not in answered
        ]
        if not pending:
            return None, None, None
        target: str | None = None
        error: str | None = None
        results: list[FunctionResultContent] = []
        for call in pending:
            wanted = call.name.removeprefix(_PREFIX)
            if asked:
                results.append(
                    FunctionResultContent(
                        call_id=call.call_id,
                        exception="not handed over: calls of this turn wait for approval; "
                        "hand over again once they are answered",
                    )
                )
            elif not call.name.startswith(_PREFIX) or wanted not in self.graph[speaker]:
                results.append(
                    FunctionResultContent(call_id=call.call_id, exception="not a handoff tool")
                )
                error = error or (
                    f"agent {speaker!r} left call {call.name!r} unanswered; a Handoff answers "
                    "only its transfer_to_<name> tools"
                )
            elif target is None and error is None:
                error = self._guard(thread, speaker, wanted)
                if error is None:
                    target = wanted
                    results.append(
                        FunctionResultContent(
                            call_id=call.call_id, result=f"Transferred to {wanted}."
                        )
                    )
                else:
                    results.append(FunctionResultContent(call_id=call.call_id, exception=error))
            else:
                results.append(
                    FunctionResultContent(
                        call_id=call.call_id, exception="ignored: one handoff at a time"
                    )
                )
        message = ChatMessage(Role.TOOL, contents=results, author_name=speaker)
        return (None if error else target), message, error

    def _guard(self, thread: MultiAgentThread, source: str, target: str) -> str | None:
        """Count a handoff; the reason to refuse it when it passes a loop bound."""
        state = thread.runner_state
        handoffs = int(state.get("handoffs", 0)) + 1
        if handoffs > self.max_handoffs:
            return (
                f"more than max_handoffs={self.max_handoffs} handoffs in one user turn (the last: "
                f"{source!r} -> {target!r}); raise max_handoffs or fix the agents' instructions"
            )
        pairs: dict[str, int] = state.setdefault("pairs", {})
        pair = "|".join(sorted((source, target)))
        along = pairs.get(pair, 0) + 1
        if along - 1 > self.max_bounces:  # every handoff along a pair after the first returns
            return (
                f"agents {source!r} and {target!r} handed the conversation back and forth more "
                f"than max_bounces={self.max_bounces} times in one user turn; raise max_bounces "
                "or tell them when to answer themselves"
            )
        pairs[pair] = along
        state["handoffs"] = handoffs
        return None
