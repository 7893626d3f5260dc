"""One turn of a run: read the thread, persist the input, build model requests, commit the outcome.

Shared by ``ChatAgent.run`` and ``run_stream`` so the two can never disagree on what is stored:

* The user's input is appended to a local thread *before* the model is called, with the
  version check, so a crash or a failed model call never loses it.
* Everything the agent produced (tool calls, tool results, the answer) is appended in one call
  at the end, checked against the version after the input. A run that fails or is abandoned
  stores none of it; the thread then ends with the unanswered input, consistent and visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from threadline.clients.base import ChatClient, ChatOptions, RunOptions
from threadline.exceptions import UsageError
from threadline.memory.context import Context, merge_contexts
from threadline.memory.provider import ContextProvider
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.thread import AgentThread, ThreadBinding
from threadline.tools import FunctionTool
from threadline.types.contents import FunctionCallContent, UsageContent, UsageDetails
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import AgentRunResponse

__all__ = ["Turn", "begin_turn"]


@dataclass(slots=True, kw_only=True)
class Turn:
    """The state of one turn between its start and its commit."""

    thread: AgentThread
    client: ChatClient
    input: list[ChatMessage]
    store: ChatMessageStore | None
    version: int | None
    """The store's version after the input was persisted: the final append is checked against it."""
    providers: Sequence[ContextProvider]
    system: list[ChatMessage]
    history: list[ChatMessage]
    context: Context
    tools: dict[str, FunctionTool]
    options: RunOptions
    author_name: str | None
    binding: ThreadBinding
    conversation_id: str | None = None
    produced: list[ChatMessage] = field(default_factory=lambda: [])
    usage: UsageDetails | None = None
    response_id: str | None = None
    pending: tuple[FunctionCallContent, ...] = ()
    """Calls to deferred tools the run stopped at; the caller answers them in the next run."""

    def first_request(self) -> list[ChatMessage]:
        """What the model is sent first: system, history (local threads), context, input.

        Tool results that open the input (answers to deferred calls) go before the context
        messages, so they directly follow the calls they answer, as every chat API requires.
        """
        answers = 0
        while answers < len(self.input) and self.input[answers].role == Role.TOOL:
            answers += 1
        return [
            *self.system,
            *self.history,
            *self.input[:answers],
            *self.context.messages,
            *self.input[answers:],
        ]

    def next_request(
        self, previous: list[ChatMessage], answer: Sequence[ChatMessage], tool_results: ChatMessage
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
        """Store what the run produced and let providers learn from it."""
        if self.store is not None:
            if self.produced:
                await self.store.add_messages(self.produced, expected_version=self.version)
        elif self.conversation_id is not None:
            self.thread.service_thread_id = self.conversation_id
            self.thread.binding = self.binding
        for provider in self.providers:
            await provider.invoked(self.input, self.produced, None, thread=self.thread)

    async def fail(self, exception: BaseException) -> None:
        """Tell providers the run failed. The input stays stored; nothing of the answer is."""
        for provider in self.providers:
            await provider.invoked(self.input, (), exception, thread=self.thread)


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
    providers: Sequence[ContextProvider],
    tools: Mapping[str, FunctionTool],
    options: RunOptions,
    author_name: str | None,
    binding: ThreadBinding,
) -> Turn:
    """Start a turn: persist the input first, then gather context from the providers."""
    store = thread.message_store
    history: list[ChatMessage] = []
    version: int | None = None
    if store is not None:
        history = await store.list_messages()
        version = len(history)
        if input_messages:
            # Persist first: a crash or a failed model call must not lose the user's turn.
            version = await store.add_messages(input_messages, expected_version=version)

    context = Context()
    all_tools = dict(tools)
    if providers:
        contexts: list[Context] = []
        offered_by: dict[str, str] = {}
        for provider in providers:
            if provider.state_key not in thread.context_state:
                thread.context_state[provider.state_key] = {}
                await provider.thread_created(thread)
            provided = await provider.invoking(input_messages, thread=thread)
            for extra in provided.tools:
                _check_clash(extra.name, provider.state_key, all_tools, offered_by)
                offered_by[extra.name] = provider.state_key
                all_tools[extra.name] = extra
            contexts.append(provided)
        context = merge_contexts(contexts)

    parts = [p for p in (instructions, context.instructions) if p]
    system = [ChatMessage(Role.SYSTEM, "\n\n".join(parts))] if parts else []
    return Turn(
        thread=thread,
        client=client,
        input=input_messages,
        store=store,
        version=version,
        providers=providers,
        system=system,
        history=history,
        context=context,
        tools=all_tools,
        options=options,
        author_name=author_name,
        binding=binding,
        conversation_id=thread.service_thread_id,
    )
