"""``GroupChat``: several agents in one conversation, a manager choosing who speaks next.

Every message, the user's and each agent's (tool calls and results included, written as text),
reaches every other participant's own thread at once, without a model call and with one append
per participant, so each agent's thread alone is a complete record of what it saw and a speaker
needs no catching up: its turn is a run with no new input. A participant chosen twice in a row
therefore still sends a well-formed request (its whole history, ending with its own answer).

A run stops after ``max_rounds`` turns (finite by default, counted per ``run``), when
``termination(transcript)`` says so, or when the manager chooses nobody. When it stops on
``max_rounds`` the next speaker is already chosen and saved with the thread, so a restored chat
resumes with the same speaker. New user input clears that choice: the manager decides again,
seeing the input.

``SequentialProcess`` is this loop with a fixed-order manager (see ``sequential.py``): one loop
for every runner whose participants all see everything.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from threadline import _tracing as tr
from threadline.agents.chat_agent import ChatAgent
from threadline.compaction import Compaction
from threadline.exceptions import GroupChatError
from threadline.memory.provider import ContextProvider
from threadline.multiagent._relay import PropagationFilter
from threadline.multiagent._runner import (
    MultiAgentInput,
    MultiAgentResponse,
    MultiAgentRunner,
    StopReason,
    _Finished,
    approval_answers,
    approval_requests,
    check_rounds,
)
from threadline.multiagent.managers import GroupChatManager, RoundRobinManager, SpeakerSelection
from threadline.multiagent.thread import MultiAgentThread, RunnerKind
from threadline.threads.stores.base import ChatMessageStore
from threadline.types.messages import ChatMessage
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["GroupChat"]

Termination = Callable[[Sequence[ChatMessage]], bool]


class GroupChat(MultiAgentRunner):
    """A bag of agents talking in one conversation (the ADR's first kind of multi-agent system).

    Args:
        participants: ``ChatAgent`` s with distinct names.
        manager: chooses the next speaker; ``RoundRobinManager()`` by default.
        max_rounds: agent turns one ``run`` may take (a turn is one participant's run).
        termination: called with the transcript after every turn; ``True`` stops the run.
        name: the chat's name, for humans.
        filters: per participant, which of the others' messages it sees (e.g.
            ``skip_tool_messages``); everything by default.
        context_providers: memory consulted on behalf of every participant, before its own.
        allow_user_data: the participants on whose behalf providers with ``holds_user_data``
            (the runner's and their own) are consulted; every participant by default, since
            the user talks to all of them.
        transcript_store_factory: where each thread's shared transcript lives; in memory by
            default. Give a durable store (SQLite, PostgreSQL) when several processes may
            continue one chat, so the version check can see them.
        compaction: the default ``Compaction`` of every participant that has none of its own:
            each summarizes the oldest turns of its own thread when its model's window fills.

    Raises:
        UsageError: a participant has no name, two share one, or one keeps its history in a
            service that cannot take messages without running the model.
    """

    _kind: RunnerKind = "group_chat"
    _what = "group chat"
    _ended: StopReason = "manager"
    """The stop reason when the manager chooses nobody."""

    def __init__(
        self,
        participants: Sequence[ChatAgent],
        *,
        manager: GroupChatManager | None = None,
        max_rounds: int = 10,
        termination: Termination | None = None,
        name: str | None = None,
        filters: Mapping[str, PropagationFilter] | None = None,
        context_providers: Sequence[ContextProvider] | None = None,
        allow_user_data: Sequence[str] | None = None,
        transcript_store_factory: Callable[[], ChatMessageStore] | None = None,
        compaction: Compaction | None = None,
    ) -> None:
        super().__init__(
            participants,
            name=name,
            filters=filters,
            context_providers=context_providers,
            allow_user_data=allow_user_data,
            transcript_store_factory=transcript_store_factory,
            compaction=compaction,
            what=self._what,
        )
        check_rounds(max_rounds)
        self.manager: GroupChatManager = manager or RoundRobinManager()
        self.max_rounds = max_rounds
        self.termination = termination

    def __repr__(self) -> str:
        return f"GroupChat(name={self.name!r}, participants={list(self.agents)!r})"

    async def run(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: MultiAgentThread | None = None,
        max_rounds: int | None = None,
    ) -> MultiAgentResponse:
        """Add the input (if any) and let agents speak until the chat stops.

        Without ``thread`` a throwaway conversation is made; ``response.thread`` continues it.
        Without input, a stopped chat continues where it stopped.

        Raises:
            GroupChatError: the manager named someone who is not a participant.
            ConcurrentThreadUpdateError: another process continued this conversation first.
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

    def _first_after_input(self) -> str | None:
        """Who speaks first after new user input; ``None``: the manager decides, seeing it."""
        return None

    async def _select(self, thread: MultiAgentThread) -> str | None:
        selection = SpeakerSelection(
            transcript=await thread.messages(),
            participants=list(self.agents),
            last_speaker=thread.last_speaker,
            state=thread.runner_state,
        )
        span = tr.start_span("select_speaker")
        try:
            with tr.activated(span):
                name = await self.manager.select(selection)
        except BaseException as exc:
            tr.end_error(span, exc)
            raise
        if span is not None:
            tr.set_if(
                span,
                {
                    tr.SELECTED_BY: type(self.manager).__name__,
                    tr.SPEAKER: name,
                    "threadline.multiagent.last_speaker": thread.last_speaker,
                },
            )
            span.end()
        if name is not None and name not in self.agents:
            raise GroupChatError(
                f"manager {type(self.manager).__name__} chose {name!r}, who is not a "
                f"participant ({', '.join(self.agents)}); return one of these names or None"
            )
        return name

    async def _events(
        self, messages: list[ChatMessage], thread: MultiAgentThread, *, stream: bool, **kw: Any
    ) -> AsyncGenerator[AgentRunResponseUpdate | _Finished, None]:
        limit: int | None = kw.get("max_rounds")
        limit = self.max_rounds if limit is None else check_rounds(limit)
        produced: list[ChatMessage] = []
        # Answers to approvals go to the participant that asked, which continues its turn.
        answers = approval_answers(thread, messages)
        if messages and not answers:
            await self._claim(thread)
            await self._broadcast(thread, messages, author=None)
            thread.next_speaker = self._first_after_input()
        rounds = 0
        stop: StopReason
        while True:
            speaker = thread.next_speaker
            if speaker is None:
                speaker = await self._select(thread)
                if speaker is None:
                    stop = self._ended
                    break
                thread.next_speaker = speaker
            if rounds >= limit:
                stop = "max_rounds"
                break
            await self._claim(thread)
            turn: list[ChatMessage] = []
            span = self._turn_span(thread, speaker)
            try:
                # aclosing: a reader that stops early ends the speaker's turn now, not when
                # collected.
                speaking = self._turn_events(thread, speaker, answers, span, stream=stream)
                answers = []
                async with aclosing(speaking) as events:
                    async for event in events:
                        if isinstance(event, _Finished):
                            turn = event.messages
                        else:
                            yield event
                with tr.activated(span):
                    await self._broadcast(thread, turn, author=speaker)
            except BaseException as exc:
                tr.end_error(span, exc)
                raise
            if span is not None:
                span.end()
            produced.extend(turn)
            thread.last_speaker = speaker
            thread.next_speaker = None
            thread.rounds_used += 1
            rounds += 1
            thread.awaiting = speaker if approval_requests(turn) else None
            if thread.awaiting is not None:  # the whole chat pauses until a person answers
                thread.next_speaker = speaker
                stop = "pending"
                break
            if self.termination is not None and self.termination(await thread.messages()):
                stop = "termination"
                break
        yield _Finished(produced, stop)
