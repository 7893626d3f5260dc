"""What group chats and processes share: participants, threads, one agent turn, the commit.

Write order of one agent turn (the guarantee every runner keeps):

1. The transcript's version is checked against the one this thread object last saw, so a thread
   restored twice cannot be continued twice: the stale copy fails here, before any model call.
2. The speaker runs on its own thread (its agent appends the turn there, version-checked).
3. The turn is appended to the transcript with the version from step 1: the commit point.
4. The turn is relayed to the other participants (one version-checked append each).

Runs and streams share this code: ``_events`` yields stream updates and, last, a ``_Finished``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from threadline import _tracing as tr
from threadline.agents.chat_agent import ChatAgent
from threadline.clients.base import SupportsAddMessages
from threadline.compaction import Compaction
from threadline.exceptions import ConcurrentThreadUpdateError, ThreadStateError, UsageError
from threadline.memory.provider import ContextProvider
from threadline.multiagent._relay import PropagationFilter, relay
from threadline.multiagent._spans import run_span, turn_span
from threadline.multiagent.thread import (
    MultiAgentThread,
    RunnerKind,
    check_participant_ids,
    new_conversation_id,
    parse_group_state,
    participant_thread_id,
)
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.memory import ChatMessageList
from threadline.threads.stores.registry import restore_store
from threadline.threads.thread import AgentThread
from threadline.tools import FunctionTool
from threadline.types.contents import (
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
)
from threadline.types.messages import ChatMessage, as_messages
from threadline.types.responses import AgentRunResponseUpdate, messages_from_updates

__all__ = [
    "GroupChatResponse",
    "MultiAgentResponse",
    "MultiAgentInput",
    "MultiAgentRunner",
    "StopReason",
    "approval_answers",
    "approval_requests",
    "check_rounds",
    "with_providers",
]

MultiAgentInput = str | ChatMessage | Sequence[str | ChatMessage] | None
StopReason = Literal["max_rounds", "termination", "manager", "done", "pending"]


def _joined(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(t for t in (m.text for m in messages) if t)


@dataclass(frozen=True, slots=True, kw_only=True)
class MultiAgentResponse:
    """What one ``run`` of a group chat or process produced, and where the conversation stands.

    ``GroupChatResponse`` is its old name, kept as an alias.
    """

    messages: tuple[ChatMessage, ...]
    """The agents' messages of this run, in order, each with its ``author_name``."""
    thread: MultiAgentThread = field(compare=False, repr=False)
    """Pass it to the next ``run`` to continue."""
    stop_reason: StopReason
    """Why the run stopped: ``max_rounds`` (the bound of this run), ``termination`` (the
    callable said so), ``manager`` (it chose nobody), ``done`` (a process finished its turn),
    ``pending`` (a call waits for a person's approval: see ``user_input_requests``)."""
    next_speaker: str | None = None
    """Who speaks first when the conversation is continued, when already decided."""

    @property
    def user_input_requests(self) -> list[FunctionApprovalRequestContent]:
        """Calls the run stopped at, waiting for approval (``stop_reason == "pending"``).

        Answer them all with ``request.create_response(approved=...)`` in one ``Role.USER``
        message, the next ``run``'s input on the same thread: the agent that asked continues.
        """
        if self.stop_reason != "pending":
            return []
        return approval_requests(self.messages)

    @property
    def text(self) -> str:
        """The text of this run's messages, one per line."""
        return _joined(self.messages)

    @property
    def last_text(self) -> str:
        """The text of the last message: a process's final output."""
        return self.messages[-1].text if self.messages else ""

    def __str__(self) -> str:
        return self.text


GroupChatResponse = MultiAgentResponse
"""The old name of :class:`MultiAgentResponse`, kept as an alias."""


def approval_requests(messages: Sequence[ChatMessage]) -> list[FunctionApprovalRequestContent]:
    """The approval requests among ``messages``, in order."""
    return [
        c
        for m in messages
        if m.plain_text is None
        for c in m.contents
        if type(c) is FunctionApprovalRequestContent
    ]


def approval_answers(
    thread: MultiAgentThread, messages: Sequence[ChatMessage]
) -> list[ChatMessage]:
    """The run's input when it answers approvals for ``thread.awaiting``; ``[]`` when none waits.

    Checked before anything is written: while a participant waits, the input must be its
    answers (the participant's own run then checks each one against its request); answers
    while nobody waits are refused too.

    Raises:
        UsageError: naming who waits and how to answer.
    """
    answers = [
        m
        for m in messages
        if m.plain_text is None
        and any(type(c) is FunctionApprovalResponseContent for c in m.contents)
    ]
    if thread.awaiting is None:
        if answers:
            raise UsageError(
                f"conversation {thread.id!r} has no call waiting for approval; an answer "
                "(FunctionApprovalResponseContent) is sent only after a run stopped with "
                "stop_reason 'pending'"
            )
        return []
    if not answers or len(answers) != len(messages):
        raise UsageError(
            f"in conversation {thread.id!r}, {thread.awaiting!r} waits for approval of its "
            "calls (response.user_input_requests, or the requests in its last message); answer "
            "them with request.create_response(approved=...) in one Role.USER message before "
            "anything else"
        )
    return list(messages)


@dataclass(frozen=True, slots=True)
class _Finished:
    messages: list[ChatMessage]
    stop_reason: StopReason


async def _check_version(transcript: ChatMessageStore, version: int) -> None:
    """Refuse a saved ``version`` the transcript contradicts.

    The version is how many transcript messages the saved conversation had seen. More than the
    transcript holds is always a damaged state. Fewer is a damaged state too when the transcript
    was restored from the state itself (in memory); a durable transcript that holds more is a
    copy saved before someone continued the conversation, which ``run`` refuses with
    ``ConcurrentThreadUpdateError`` (that is what it is), so it restores.
    """
    try:
        await transcript.add_messages([], expected_version=version)  # checks, writes nothing
    except ConcurrentThreadUpdateError as exc:
        held = exc.actual_version
        if held < version or isinstance(transcript, ChatMessageList):
            raise ThreadStateError(
                f"field 'version' is {version}, but the transcript holds {held} messages; the "
                "state was edited or cut: restore it from an intact copy"
            ) from None


def check_rounds(max_rounds: int) -> int:
    """``max_rounds`` itself, or ``ValueError`` when it is not an int >= 1."""
    if type(max_rounds) is not int or max_rounds < 1:
        raise ValueError(f"max_rounds must be an int >= 1, got {max_rounds!r}")
    return max_rounds


def with_providers(
    agent: ChatAgent, runner: Sequence[ContextProvider], *, user_data: bool
) -> ChatAgent:
    """``agent`` as it runs inside a runner: the runner's providers first, then its own.

    Without ``user_data`` every provider that ``holds_user_data`` is left out, the agent's own
    included: the agent is never consulted on the user's behalf with them, so nothing they produce
    reaches its requests. Returns ``agent`` itself when nothing changes; otherwise an agent of the
    same id, name, client, tools and settings.
    """
    providers = [
        p for p in (*runner, *agent.context_providers) if user_data or not p.holds_user_data
    ]
    if tuple(providers) == agent.context_providers:
        return agent
    return agent.replace(context_providers=providers)


def with_compaction(agent: ChatAgent, compaction: Compaction | None) -> ChatAgent:
    """``agent`` with the runner's ``compaction`` when it has none of its own (its own wins).

    Each participant keeps its own thread and sends it to its own model, so compaction is per
    participant: the runner's setting is the default for those that were given none.
    """
    if compaction is not None and not isinstance(compaction, Compaction):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise UsageError(f"compaction must be a Compaction, got {compaction!r}")
    if compaction is None or agent.compaction is not None:
        return agent
    return agent.replace(compaction=compaction)


def check_agents(agents: Sequence[ChatAgent], *, what: str) -> dict[str, ChatAgent]:
    """Participants by name; names must be set, distinct and usable in tool names."""
    if not agents:
        raise UsageError(f"a {what} needs at least one agent")
    by_name: dict[str, ChatAgent] = {}
    for agent in agents:
        if not isinstance(agent, ChatAgent):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"{what} participants must be ChatAgents, got {agent!r}")
        name = agent.name
        if not name or not (name.isascii() and name.replace("_", "").replace("-", "").isalnum()):
            raise UsageError(
                f"every {what} participant needs a name of letters, digits, '_' or '-' (it "
                f"labels its messages), got {name!r} for {agent!r}; set ChatAgent(name=...)"
            )
        if name in by_name:
            raise UsageError(f"two {what} participants are named {name!r}; names must differ")
        by_name[name] = agent
    return by_name


class MultiAgentRunner:
    """Base of ``GroupChat``, ``SequentialProcess`` and ``Handoff``: threads and turns."""

    _kind: RunnerKind = "group_chat"

    def __init__(
        self,
        agents: Sequence[ChatAgent],
        *,
        name: str | None,
        filters: Mapping[str, PropagationFilter] | None,
        context_providers: Sequence[ContextProvider] | None,
        allow_user_data: Sequence[str] | None,
        transcript_store_factory: Callable[[], ChatMessageStore] | None,
        what: str,
        compaction: Compaction | None = None,
    ) -> None:
        given = {
            n: with_compaction(a, compaction) for n, a in check_agents(agents, what=what).items()
        }
        allowed = set(given) if allow_user_data is None else set(allow_user_data)
        if allowed - set(given):
            raise UsageError(
                f"allow_user_data names {sorted(allowed - set(given))}, which are not "
                f"participants ({', '.join(given)})"
            )
        self.context_providers = tuple(context_providers or ())
        self.allow_user_data = frozenset(allowed)
        """Agents on whose behalf providers that ``holds_user_data`` are consulted."""
        self.agents = {
            n: with_providers(a, self.context_providers, user_data=n in allowed)
            for n, a in given.items()
        }
        """The participants as they run here (with the runner's providers), by name."""
        self.name = name
        self.filters: dict[str, PropagationFilter] = dict(filters or {})
        unknown = set(self.filters) - set(self.agents)
        if unknown:
            raise UsageError(
                f"filters name {sorted(unknown)}, which are not participants "
                f"({', '.join(self.agents)})"
            )
        self.transcript_store_factory = transcript_store_factory
        for agent in self.agents.values():
            client = agent.chat_client
            if client.stores_history and not isinstance(client, SupportsAddMessages):
                raise UsageError(
                    f"participant {agent.name!r} keeps its history in service "
                    f"{client.service_name!r}, whose client {type(client).__name__} cannot take "
                    "other participants' messages without running the model; use a client that "
                    "keeps history locally or one that implements SupportsAddMessages"
                )

    # -- threads -----------------------------------------------------------------------------

    def get_new_thread(self, *, user_id: str | None = None) -> MultiAgentThread:
        """A new conversation: a new thread for every participant and an empty transcript.

        Each participant's thread id names the conversation (``<conversation id>.<name>``), so a
        restore can tell a participant thread of another conversation.
        """
        factory = self.transcript_store_factory
        conversation_id = new_conversation_id()
        participants: dict[str, AgentThread] = {}
        for name, agent in self.agents.items():
            participants[name] = agent.get_new_thread(user_id=user_id)
            participants[name].id = participant_thread_id(conversation_id, name)
        return MultiAgentThread(
            kind=self._kind,
            participants=participants,
            transcript=factory() if factory is not None else ChatMessageList(),
            thread_id=conversation_id,
            user_id=user_id,
        )

    async def deserialize_thread(self, state: Mapping[str, Any]) -> MultiAgentThread:
        """Restore a conversation from ``thread.serialize()``, ready to continue exactly there.

        Raises:
            ThreadStateError: the state is malformed, of another runner, names other participants
                than this one's, holds a participant thread of another user or conversation, or
                a ``version`` the transcript contradicts (the message names the field).
        """
        parsed = parse_group_state(state, kind=self._kind)
        if set(parsed.participants) != set(self.agents):
            raise ThreadStateError(
                f"the state's participants {sorted(parsed.participants)} differ from this "
                f"runner's {sorted(self.agents)}; restore it with the same agents"
            )
        for field_name in ("last_speaker", "next_speaker", "awaiting"):
            value = getattr(parsed, field_name)
            if value is not None and value not in self.agents:
                raise ThreadStateError(f"{field_name} {value!r} is not a participant")
        threads = {
            n: await self.agents[n].deserialize_thread(s) for n, s in parsed.participants.items()
        }
        for name, own in threads.items():
            if own.user_id != parsed.user_id:
                # A participant runs with its own thread's user: its memories must be the user's.
                raise ThreadStateError(
                    f"field 'participants.{name}.user_id' is {own.user_id!r}, but the "
                    f"conversation belongs to {parsed.user_id!r}; a participant thread of another "
                    "user is never restored into it"
                )
        check_participant_ids(parsed.thread_id, threads)
        transcript = await restore_store(
            parsed.transcript.kind, parsed.transcript.state, self.transcript_store_factory
        )
        await _check_version(transcript, parsed.version)
        self._check_runner_state(parsed.runner_state, version=parsed.version)
        thread = MultiAgentThread(
            kind=self._kind,
            participants=threads,
            transcript=transcript,
            thread_id=parsed.thread_id,
            user_id=parsed.user_id,
        )
        thread.version = parsed.version
        thread.rounds_used = parsed.rounds_used
        thread.last_speaker = parsed.last_speaker
        thread.next_speaker = parsed.next_speaker
        thread.awaiting = parsed.awaiting
        # A copy: running the restored thread must not change the caller's state dict.
        thread.runner_state = copy.deepcopy(parsed.runner_state)
        return thread

    def _check_runner_state(self, state: dict[str, Any], *, version: int) -> None:
        """Refuse a saved ``runner_state`` this runner cannot continue (``ThreadStateError``).

        A group chat's belongs to its manager, which checks it itself; runners that keep their
        own bookkeeping there override this.
        """

    def _prepare(self, thread: MultiAgentThread | None) -> MultiAgentThread:
        if thread is None:
            return self.get_new_thread()
        if not isinstance(thread, MultiAgentThread):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(
                f"thread must be a MultiAgentThread from this runner's get_new_thread(), got "
                f"{type(thread).__name__}"
            )
        if thread.kind != self._kind or set(thread.participants) != set(self.agents):
            raise UsageError(
                f"thread {thread.id!r} belongs to a {thread.kind} of {sorted(thread.participants)},"
                f" not this {self._kind} of {sorted(self.agents)}"
            )
        return thread

    # -- one turn ----------------------------------------------------------------------------

    async def _claim(self, thread: MultiAgentThread) -> None:
        """Fail with ``ConcurrentThreadUpdateError`` if someone else continued this conversation.

        An empty, version-checked append: every built-in store checks the version even when there
        is nothing to add, and a transcript store must do the same for this guard to hold.
        """
        thread.version = await thread.transcript.add_messages([], expected_version=thread.version)

    def _turn_events(
        self,
        thread: MultiAgentThread,
        name: str,
        input_messages: Sequence[ChatMessage],
        span: tr.Span | None,
        *,
        stream: bool,
        tools: Sequence[FunctionTool] | None = None,
    ) -> AsyncGenerator[AgentRunResponseUpdate | _Finished, None]:
        """``_speak`` with the turn's span current at each step: the speaker's run nests in it."""
        events = self._speak(thread, name, input_messages, stream=stream, tools=tools)
        return tr.iterate_in(span, events) if span is not None else events

    def _turn_span(self, thread: MultiAgentThread, speaker: str) -> tr.Span | None:
        return turn_span(self._kind, speaker, thread)

    async def _speak(
        self,
        thread: MultiAgentThread,
        name: str,
        input_messages: Sequence[ChatMessage],
        *,
        stream: bool,
        tools: Sequence[FunctionTool] | None = None,
    ) -> AsyncGenerator[AgentRunResponseUpdate | _Finished, None]:
        """One agent turn on its own thread; yields updates when streaming, then ``_Finished``."""
        agent = self.agents[name]
        own = thread.participants[name]
        messages = list(input_messages) or None
        if not stream:
            response = await agent.run(messages, thread=own, tools=tools)
            # Named throughout (tool results too), so the transcript says whose turn each was.
            yield _Finished([self._named(m, name) for m in response.messages], "done")
            return
        updates: list[AgentRunResponseUpdate] = []
        # aclosing: a reader that stops early ends the agent's turn now, not when it is collected.
        async with aclosing(agent.run_stream(messages, thread=own, tools=tools)) as agent_updates:
            async for update in agent_updates:
                updates.append(update)
                yield update
        folded, _ = messages_from_updates(updates)
        yield _Finished([self._named(m, name) for m in folded], "done")

    @staticmethod
    def _named(message: ChatMessage, name: str) -> ChatMessage:
        return message if message.author_name else message.replace(author_name=name)

    async def _record(self, thread: MultiAgentThread, messages: Sequence[ChatMessage]) -> None:
        """Append to the transcript: the commit point of a turn."""
        if messages:
            thread.version = await thread.transcript.add_messages(
                messages, expected_version=thread.version
            )

    async def _relay_to(
        self,
        thread: MultiAgentThread,
        name: str,
        messages: Sequence[ChatMessage],
        *,
        author: str | None,
    ) -> None:
        """Show ``messages`` (by ``author``; the user when ``None``) to participant ``name``."""
        shown = relay(messages, author=author, keep=self.filters.get(name))
        if shown:
            await self.agents[name].add_chat_message(shown, thread=thread.participants[name])

    async def _broadcast(
        self, thread: MultiAgentThread, messages: Sequence[ChatMessage], *, author: str | None
    ) -> None:
        """Record a turn and relay it to every participant but its author."""
        await self._record(thread, messages)
        for name in self.agents:
            if name != author:
                await self._relay_to(thread, name, messages, author=author)

    # -- the public surface ------------------------------------------------------------------

    def _events(
        self, messages: list[ChatMessage], thread: MultiAgentThread, *, stream: bool, **kw: Any
    ) -> AsyncGenerator[AgentRunResponseUpdate | _Finished, None]:
        raise NotImplementedError

    async def _run(
        self, messages: MultiAgentInput, thread: MultiAgentThread | None, **kw: Any
    ) -> MultiAgentResponse:
        group = self._prepare(thread)
        finished: _Finished | None = None
        async with group._lock:
            span = run_span(self._kind, self.name, group, stream=False)
            try:
                with tr.activated(span):  # a coroutine: the span is current for the whole run
                    events = self._events(as_messages(messages), group, stream=False, **kw)
                    async for event in events:
                        if isinstance(event, _Finished):
                            finished = event
            except BaseException as exc:
                tr.end_error(span, exc)
                raise
        assert finished is not None
        if span is not None:
            span.set_attribute(tr.STOP_REASON, finished.stop_reason)
            span.end()
        return MultiAgentResponse(
            messages=tuple(finished.messages),
            thread=group,
            stop_reason=finished.stop_reason,
            next_speaker=group.next_speaker,
        )

    async def _run_stream(
        self, messages: MultiAgentInput, thread: MultiAgentThread | None, **kw: Any
    ) -> AsyncGenerator[AgentRunResponseUpdate, None]:
        group = self._prepare(thread)
        async with group._lock:
            span = run_span(self._kind, self.name, group, stream=True)
            # aclosing: a reader that stops early closes the runner's loop (and the speaker's
            # turn) now, under the lock, so what it keeps is settled before the next run starts.
            events = self._events(as_messages(messages), group, stream=True, **kw)
            try:
                async with aclosing(tr.iterate_in(span, events) if span else events) as running:
                    async for event in running:
                        if isinstance(event, _Finished):
                            if span is not None:
                                span.set_attribute(tr.STOP_REASON, event.stop_reason)
                        else:
                            yield event
            except BaseException as exc:
                tr.end_error(span, exc)
                raise
            if span is not None:
                span.end()
