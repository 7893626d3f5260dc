"""One turn of a run: read the thread, build model requests, commit the turn in one append.

Shared by ``ChatAgent.run`` and ``run_stream`` so the two can never disagree on what is stored. A
turn is **one** append to a local thread, so two writers can never interleave inside a turn:

* A turn that ends (an answer, or calls the caller must run) appends its input and everything the
  agent produced (tool calls, tool results, the answer) in one call, checked against the version
  read when the turn began. If another writer changed the thread meanwhile, the append raises
  ``ConcurrentThreadUpdateError`` and writes nothing: the caller still holds its input and may
  retry the turn, which then reads the other writer's turn first.
* A turn that fails (the model call raised) or is abandoned (a stream closed early, a cancelled
  task) appends its input alone, its last message marked with an :class:`ErrorContent` (code
  :data:`TURN_FAILED` or :data:`TURN_ABANDONED`), so the thread shows a question that was never
  answered. That append is not version-checked: it is one append, so it cannot split another
  writer's turn, and the user's words are kept whatever happened to the thread meanwhile.
* A process killed during the model call stores nothing of the turn: its input was never
  acknowledged (no response, no stream end), so the caller cannot have counted on it.
* A turn that compacts the history (see :mod:`threadline.compaction`) stores its summary first in
  that same checked append, so two writers cannot both compact; a failed turn drops the summary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from threadline import _tracing as tr
from threadline.agents._spans import store_span, traced_append
from threadline.clients.base import ChatClient, ChatOptions, RunOptions
from threadline.compaction import Compaction
from threadline.exceptions import UsageError
from threadline.memory.context import Context, merge_contexts
from threadline.memory.provider import ContextProvider
from threadline.threads.stores.base import ChatMessageStore, read_thread
from threadline.threads.thread import AgentThread, ThreadBinding
from threadline.tools import FunctionTool
from threadline.types.contents import (
    ErrorContent,
    FunctionCallContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage, MessageView, Role
from threadline.types.responses import AgentRunResponse

if TYPE_CHECKING:
    from threadline.agents._approvals import Resolution

__all__ = ["TURN_ABANDONED", "TURN_FAILED", "Turn", "begin_turn", "mark_unanswered"]

TURN_FAILED = "turn_failed"
"""``ErrorContent.error_code`` on the last input message of a turn whose model call failed."""
TURN_ABANDONED = "turn_abandoned"
"""``ErrorContent.error_code`` on the last input message of a turn abandoned before its answer."""


def mark_unanswered(messages: Sequence[ChatMessage], exception: BaseException) -> list[ChatMessage]:
    """``messages`` with the last one marked as never answered, saying why.

    The mark is an :class:`ErrorContent` added to the message (same id, same text): readers see
    that the turn did not complete, and model clients send text only, so the next turn's model
    still sees the question. ``GeneratorExit`` (a stream closed early) and ``CancelledError``
    count as abandoned, anything else as failed.
    """
    if not messages:
        return []
    abandoned = isinstance(exception, GeneratorExit | asyncio.CancelledError)
    reason = str(exception) or type(exception).__name__
    mark = ErrorContent(
        message=(
            "the turn was abandoned before its answer"
            if abandoned
            else f"the turn failed before its answer: {reason}"
        ),
        error_code=TURN_ABANDONED if abandoned else TURN_FAILED,
        details=type(exception).__name__,
    )
    last = messages[-1]
    return [*messages[:-1], last.replace(contents=[*last.contents, mark])]


@dataclass(slots=True, kw_only=True)
class Turn:
    """The state of one turn between its start and its commit."""

    thread: AgentThread
    client: ChatClient
    input: list[ChatMessage]
    store: ChatMessageStore | None
    version: int | None
    """The store's version when the turn began: the turn's one append is checked against it."""
    providers: Sequence[ContextProvider]
    system: Sequence[ChatMessage]
    history: Sequence[ChatMessage]
    """The thread's messages as the model is sent them: as read for this turn (a view, not a
    copy, where the store can), compacted when the agent compacts (see
    :func:`threadline.compaction.compacted_view`)."""
    context: Context
    tools: Mapping[str, FunctionTool]
    """The run's tools by name (the agent's own mapping when nothing adds any: never changed)."""
    options: RunOptions
    author_name: str | None
    binding: ThreadBinding
    conversation_id: str | None = None
    produced: list[ChatMessage] = field(default_factory=lambda: [])
    usage: UsageDetails | None = None
    response_id: str | None = None
    summary: ChatMessage | None = None
    """A summary this turn made of old turns; stored first in the turn's append."""
    pending: tuple[FunctionCallContent, ...] = ()
    """Calls to deferred tools the run stopped at; the caller answers them in the next run."""
    span: tr.Span | None = None
    """The run's ``invoke_agent`` span: ``None`` when tracing is off, not recording when the run
    was not sampled (its descendants are then dropped with it)."""
    observed: bool = False
    """Tracing or metrics are on: model calls are timed and reported."""
    resolution: Resolution | None = None
    """Approvals this turn answers (or finds in doubt), carried out before its first model call
    (see :mod:`threadline.agents._approvals`)."""

    def first_request(self) -> Sequence[ChatMessage]:
        """What the model is sent first: system, history (local threads), context, input.

        Tool results that open the input (answers to deferred calls) go before the context
        messages, so they directly follow the calls they answer, as every chat API requires.

        A read-only view joining those parts, not a new list: on a long thread, copying the
        history into a request would be most of the turn's cost.
        """
        context = self.context.messages
        if not context:
            return MessageView.of(self.system, self.history, self.input)
        answers = 0
        while answers < len(self.input) and self.input[answers].role == Role.TOOL:
            answers += 1
        return MessageView.of(
            self.system, self.history, self.input[:answers], context, self.input[answers:]
        )

    def next_request(
        self,
        previous: Sequence[ChatMessage],
        answer: Sequence[ChatMessage],
        tool_results: ChatMessage,
    ) -> list[ChatMessage]:
        """The request after a round of tool calls: services already hold everything but results."""
        if self.client.stores_history:
            return [*self.system, tool_results]
        return [*previous, *answer, tool_results]

    def call_options(self, *, final: bool) -> ChatOptions:
        """Options for the next model call; ``final`` forbids further tool calls."""
        options = ChatOptions(**self.options)
        if self.tools and not final:
            options["tools"] = list(self.tools.values())
        if final and self.tools:
            options["tool_choice"] = "none"
        if self.conversation_id is not None:
            options["conversation_id"] = self.conversation_id
        return options

    def record(
        self,
        messages: Sequence[ChatMessage],
        *,
        usage: UsageDetails | None,
        response_id: str | None,
        conversation_id: str | None,
    ) -> list[ChatMessage]:
        """Keep a model answer; returns it with the agent named as author of assistant messages."""
        named = [self._named(m) for m in messages]
        self.produced.extend(named)
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage
        for message in named:  # usage may also arrive inside the messages
            for content in message.contents:
                if type(content) is UsageContent:
                    details = content.details
                    self.usage = details if self.usage is None else self.usage + details
        self.response_id = response_id or self.response_id
        self.conversation_id = conversation_id or self.conversation_id
        return named

    def _named(self, message: ChatMessage) -> ChatMessage:
        if (
            self.author_name is None
            or message.author_name is not None
            or message.role != Role.ASSISTANT
        ):
            return message
        return message.replace(author_name=self.author_name)

    def response(self) -> AgentRunResponse:
        """What ``agent.run`` returns for this turn."""
        return AgentRunResponse(
            messages=tuple(self.produced),
            response_id=self.response_id,
            usage=self.usage,
            thread=self.thread,
            pending_calls=self.pending,
        )

    async def commit(self) -> None:
        """Store the whole turn in one checked append, then let providers learn from it.

        Raises:
            ConcurrentThreadUpdateError: another writer changed the thread since the turn began;
                nothing was stored and providers were told the turn failed (so was any other
                error of the store).
        """
        if self.store is not None:
            turn = [*self.input, *self.produced]
            if turn and self.summary is not None:
                turn.insert(0, self.summary)
            if turn:
                try:
                    if self.span is None:
                        await self.store.add_messages(turn, expected_version=self.version)
                    else:
                        await self._append(turn, expected_version=self.version)
                except Exception as exc:
                    await self._tell_failed(exc)
                    raise
        elif self.conversation_id is not None:
            self.thread.service_thread_id = self.conversation_id
            self.thread.binding = self.binding
        for provider in self.providers:
            await provider.invoked(self.input, self.produced, None, thread=self.thread)

    async def fail(self, exception: BaseException) -> None:
        """Keep the input alone, marked unanswered; nothing of the answer is stored.

        A store that cannot take the input does not hide ``exception`` (the caller's real
        problem): its error is added to it as a note.
        """
        if self.store is not None and self.input:
            try:
                await self._append(mark_unanswered(self.input, exception), expected_version=None)
            except Exception as store_error:  # the turn's own error is the one to raise
                exception.add_note(f"the turn's input could not be stored either: {store_error!r}")
        await self._tell_failed(exception)

    async def _append(self, messages: list[ChatMessage], *, expected_version: int | None) -> None:
        assert self.store is not None
        await traced_append(
            self.store,
            self.thread.id,
            messages,
            expected_version=expected_version,
            parent=self.span,
        )

    async def _tell_failed(self, exception: BaseException) -> None:
        for provider in self.providers:
            await provider.invoked(self.input, (), exception, thread=self.thread)


_NO_CONTEXT = Context()
"""What a turn gets when no provider adds anything (a Context is immutable: one serves all)."""


def _check_clash(
    name: str, provider: str, tools: Mapping[str, FunctionTool], offered_by: Mapping[str, str]
) -> None:
    """Refuse a provider tool that would silently replace another tool of the same name."""
    if name not in tools:
        return
    other = offered_by.get(name)
    owner = f"context provider {other!r}" if other is not None else "the agent (or this run)"
    raise UsageError(
        f"context provider {provider!r} offers a tool named {name!r}, but {owner} already has "
        f"a tool of that name; rename one, e.g. with tool(name=...) or FunctionTool(name=...)"
    )


async def begin_turn(
    *,
    thread: AgentThread,
    client: ChatClient,
    input_messages: list[ChatMessage],
    instructions: str | None,
    system_messages: Sequence[ChatMessage],
    providers: Sequence[ContextProvider],
    tools: Mapping[str, FunctionTool],
    options: RunOptions,
    author_name: str | None,
    binding: ThreadBinding,
    span: tr.Span | None = None,
    observed: bool = False,
    compaction: Compaction | None = None,
) -> Turn:
    """Start a turn: read the history and its version, then gather context from the providers.

    Nothing is written yet: the turn is stored whole by :meth:`Turn.commit` (or its input alone,
    marked, by :meth:`Turn.fail`). ``span`` is the run's span (``None``: not traced) and
    ``observed`` says model calls are to be timed and reported (traces or metrics are on).
    ``compaction``: summarize the oldest turns when the request would exceed its budget.
    """
    store = thread.message_store
    history: Sequence[ChatMessage] = ()
    version: int | None = None
    if store is not None:
        history = await read_thread(store) if span is None else await _read(store, thread, span)
        version = len(history)

    context = _NO_CONTEXT
    all_tools: Mapping[str, FunctionTool] = tools
    if providers:
        merged = dict(tools)
        contexts: list[Context] = []
        offered_by: dict[str, str] = {}
        for provider in providers:
            if provider.state_key not in thread.context_state:
                thread.context_state[provider.state_key] = {}
                await provider.thread_created(thread)
            if span is None:
                provided = await provider.invoking(input_messages, thread=thread)
            else:
                provided = await _invoking(provider, input_messages, thread, span)
            for extra in provided.tools:
                _check_clash(extra.name, provider.state_key, merged, offered_by)
                offered_by[extra.name] = provider.state_key
                merged[extra.name] = extra
            contexts.append(provided)
        context = merge_contexts(contexts)
        all_tools = merged

    if context.instructions:
        parts = [p for p in (instructions, context.instructions) if p]
        system: Sequence[ChatMessage] = (ChatMessage(Role.SYSTEM, "\n\n".join(parts)),)
    else:
        system = system_messages
    summary = None
    if compaction is not None and store is not None:
        history, summary = await compaction.compact(
            history,
            fixed=[*system, *context.messages, *input_messages],
            client=client,
            options=options,
            in_progress=bool(input_messages) and input_messages[0].role == Role.TOOL,
        )
    return Turn(
        thread=thread,
        client=client,
        input=input_messages,
        store=store,
        version=version,
        providers=providers,
        system=system,
        history=history,
        summary=summary,
        context=context,
        tools=all_tools,
        options=options,
        author_name=author_name,
        binding=binding,
        conversation_id=thread.service_thread_id,
        span=span,
        observed=observed,
    )


async def _read(
    store: ChatMessageStore, thread: AgentThread, parent: tr.Span
) -> Sequence[ChatMessage]:
    """The thread's history for this turn, traced as a ``read`` of its store."""
    span = store_span("read", store, thread.id, parent)
    try:
        with tr.activated(span):
            history = await read_thread(store)
    except BaseException as exc:
        tr.end_error(span, exc)
        raise
    if span is not None:
        span.set_attribute(tr.MESSAGE_COUNT, len(history))
        span.set_attribute(tr.STORE_VERSION, len(history))
        span.end()
    return history


async def _invoking(
    provider: ContextProvider,
    messages: Sequence[ChatMessage],
    thread: AgentThread,
    parent: tr.Span,
) -> Context:
    """``provider.invoking``, traced; the provider's own spans (memory recall) nest under it."""
    span = tr.start_span(f"invoking {provider.state_key}", parent=parent)
    try:
        with tr.activated(span or parent):  # an unsampled run's providers stay in its trace
            provided = await provider.invoking(messages, thread=thread)
    except BaseException as exc:
        tr.end_error(span, exc)
        raise
    if span is not None:
        span.set_attribute(tr.PROVIDER_KEY, provider.state_key)
        span.set_attribute("threadline.context.messages", len(provided.messages))
        span.set_attribute("threadline.context.tools", len(provided.tools))
        span.set_attribute("threadline.context.instructions", bool(provided.instructions))
        span.end()
    return provided
