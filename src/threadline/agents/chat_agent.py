"""``ChatAgent``: a stateless agent over any ``ChatClient``, with tools and context providers.

The agent holds configuration only. Everything about a conversation lives in the ``AgentThread``
passed to each run, so one agent serves any number of threads, concurrently.

Concurrency: runs on the same ``AgentThread`` object are serialized, so a second ``run`` waits for
the first to finish and then sees its turn. Separate thread objects over one durable store (two
processes, say) do not wait for each other: a turn is one checked append (see ``_turn.py``), so the
run that ends second finds the thread changed and fails with ``ConcurrentThreadUpdateError``,
having stored nothing, rather than interleave its turn.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Self, TypedDict, Unpack

from threadline import _tracing as tr
from threadline.agents._approvals import check_answers, check_store, may_answer, response_of
from threadline.agents._run_loop import run_loop
from threadline.agents._spans import agent_span, traced_append
from threadline.agents._turn import Turn, begin_turn
from threadline.clients.base import ChatClient, RunOptions, SupportsAddMessages
from threadline.closing import aclose_if_closable
from threadline.compaction import Compaction
from threadline.exceptions import IncompatibleThreadError, UsageError
from threadline.memory.provider import ContextProvider
from threadline.threads.state import parse_thread_state
from threadline.threads.stores.base import ChatMessageStore, read_thread
from threadline.threads.stores.memory import ChatMessageList
from threadline.threads.stores.registry import restore_store
from threadline.threads.thread import AgentThread, ThreadBinding
from threadline.tools import FunctionTool, ToolSource, as_tool
from threadline.types.messages import ChatMessage, Role, as_messages
from threadline.types.responses import (
    AgentRunResponse,
    AgentRunResponseUpdate,
)

__all__ = ["ChatAgent"]

AgentInput = str | ChatMessage | Sequence[str | ChatMessage] | None
ToolInput = FunctionTool | ToolSource | Callable[..., Any]


class AgentChanges(TypedDict, total=False):
    """The constructor's arguments, any of which :meth:`ChatAgent.replace` may change."""

    chat_client: ChatClient
    instructions: str | None
    id: str
    name: str | None
    description: str | None
    tools: Sequence[ToolInput] | None
    context_providers: Sequence[ContextProvider] | ContextProvider | None
    chat_message_store_factory: Callable[[], ChatMessageStore] | None
    max_tool_iterations: int
    default_options: RunOptions | None
    compaction: Compaction | None


class ChatAgent:
    """An agent that answers through a chat client, calling tools until the model answers.

    Args:
        chat_client: the model endpoint.
        instructions: the system message of every call.
        id: a stable id recorded in the threads this agent binds; generated when omitted.
        name: the agent's name, set as ``author_name`` of its messages (useful in group chats).
        description: what the agent is for, for humans and orchestrators.
        tools: plain functions (described from their hints and docstrings), ``FunctionTool`` s,
            or tool sources such as ``MCPStdioTool`` (their tools are asked for at each run).
        context_providers: memory components, consulted in order before every model call.
        chat_message_store_factory: makes the store of each new local thread, and the store that
            restored threads load their state into; in-memory ``ChatMessageList`` by default.
        max_tool_iterations: model calls that may ask for tools in one run; the call after that
            must answer without tools (a model that calls them anyway fails with
            ``AgentRunError``).
        default_options: options for every call (``model``, ``temperature``, ...).
        compaction: summarize the oldest turns of a local thread into one stored summary when
            the history outgrows the model's window (see :class:`Compaction`); ``None``: the
            client cuts what does not fit (a local model) or the service refuses it.
    """

    def __init__(
        self,
        chat_client: ChatClient,
        instructions: str | None = None,
        *,
        id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tools: Sequence[ToolInput] | None = None,
        context_providers: Sequence[ContextProvider] | ContextProvider | None = None,
        chat_message_store_factory: Callable[[], ChatMessageStore] | None = None,
        max_tool_iterations: int = 10,
        default_options: RunOptions | None = None,
        compaction: Compaction | None = None,
    ) -> None:
        if not isinstance(chat_client, ChatClient):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(
                f"chat_client must implement the ChatClient protocol, got {chat_client!r}"
            )
        if max_tool_iterations < 0:
            raise ValueError(f"max_tool_iterations must be >= 0, got {max_tool_iterations}")
        self.chat_client = chat_client
        self.instructions = instructions
        self.id = id or "agent_" + os.urandom(8).hex()
        self.name = name
        self.description = description
        self.tools: dict[str, FunctionTool] = self._tool_map(tools)
        self.tool_sources: tuple[ToolSource, ...] = self._sources(tools)
        """Sources of tools known only at run time (MCP servers), asked at the start of each run."""
        if isinstance(context_providers, ContextProvider):
            context_providers = [context_providers]
        self.context_providers: tuple[ContextProvider, ...] = tuple(context_providers or ())
        self._check_state_keys(self.context_providers)
        self._provider_map = {p.state_key: p for p in self.context_providers}
        self.chat_message_store_factory = chat_message_store_factory
        self.max_tool_iterations = max_tool_iterations
        self.default_options: RunOptions = default_options or RunOptions()
        if compaction is not None and not isinstance(compaction, Compaction):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"compaction must be a Compaction, got {compaction!r}")
        self.compaction = compaction

    @property
    def instructions(self) -> str | None:
        """The system message of every call."""
        return self._instructions

    @instructions.setter
    def instructions(self, value: str | None) -> None:
        self._instructions = value
        # Made once, not per call: the message of every call whose providers add no instructions.
        self._system: tuple[ChatMessage, ...] = (ChatMessage(Role.SYSTEM, value),) if value else ()

    def replace(self, **changes: Unpack[AgentChanges]) -> ChatAgent:
        """A new agent with the same configuration but ``changes``; this one is left as it is.

        The one way to derive an agent (the server adds memory, a group chat adds its relay
        provider, a request adds instructions): every constructor argument is carried over, so a
        field added to ``ChatAgent`` later is never silently dropped by a hand-written copy. The
        result is checked like any new agent (tool names, provider state keys).
        """
        fields: AgentChanges = {
            "chat_client": self.chat_client,
            "instructions": self.instructions,
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tools": [*self.tools.values(), *self.tool_sources],
            "context_providers": self.context_providers,
            "chat_message_store_factory": self.chat_message_store_factory,
            "max_tool_iterations": self.max_tool_iterations,
            "default_options": self.default_options,
            "compaction": self.compaction,
        }
        fields.update(changes)
        return ChatAgent(**fields)

    def __repr__(self) -> str:
        return f"ChatAgent(id={self.id!r}, name={self.name!r}, client={self.chat_client!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the chat client and the tool sources (``aclose()``, see :mod:`threadline.closing`).

        A closed tool source connects again when next used, so closing one shared with other
        agents costs them a reconnect, nothing more.
        """
        await aclose_if_closable(self.chat_client)
        for source in self.tool_sources:
            await aclose_if_closable(source)

    @staticmethod
    def _check_state_keys(providers: Sequence[ContextProvider]) -> None:
        seen: dict[str, ContextProvider] = {}
        for provider in providers:
            first = seen.setdefault(provider.state_key, provider)
            if first is not provider:
                cls = type(provider).__name__
                raise UsageError(
                    f"context providers {type(first).__name__} and {cls} share the state_key "
                    f"{provider.state_key!r}, so their per-thread state would collide; give each "
                    f"its own with the constructor argument, e.g. {cls}(state_key='work_facts')"
                )

    @staticmethod
    def _sources(tools: Sequence[ToolInput] | None) -> tuple[ToolSource, ...]:
        return tuple(t for t in tools or () if isinstance(t, ToolSource))

    @staticmethod
    def _tool_map(tools: Sequence[ToolInput] | None) -> dict[str, FunctionTool]:
        out: dict[str, FunctionTool] = {}
        for item in tools or ():
            if isinstance(item, ToolSource):
                continue
            described = as_tool(item)
            if described.name in out:
                raise UsageError(
                    f"two tools are named {described.name!r}; rename one with tool(name=...)"
                )
            out[described.name] = described
        return out

    # -- threads ---------------------------------------------------------------------------

    def _binding(self) -> ThreadBinding:
        service = self.chat_client.service_name if self.chat_client.stores_history else None
        return ThreadBinding(service=service, agent_id=self.id, agent_name=self.name)

    def _new_store(self) -> ChatMessageStore:
        factory = self.chat_message_store_factory
        return factory() if factory is not None else ChatMessageList()

    def get_new_thread(
        self, *, service_thread_id: str | None = None, user_id: str | None = None
    ) -> AgentThread:
        """A new thread of the kind this agent's client needs.

        Local threads get a store from ``chat_message_store_factory`` at once; service-managed
        threads get their conversation id from the service on the first run, unless one is given.
        ``user_id`` names whose conversation it is, for memory that outlives the thread.
        """
        if self.chat_client.stores_history:
            thread = AgentThread(service_thread_id=service_thread_id, user_id=user_id)
            if service_thread_id is not None:
                thread.binding = self._binding()
        else:
            if service_thread_id is not None:
                raise UsageError(
                    f"agent {self.name or self.id!r} keeps history locally; it has no use for "
                    f"service_thread_id {service_thread_id!r}"
                )
            thread = AgentThread(message_store=self._new_store(), user_id=user_id)
            thread.binding = self._binding()
        thread.attach(self._provider_map, self.chat_client)
        return thread

    def check_thread(self, thread: AgentThread) -> None:
        """Raise ``IncompatibleThreadError`` if this agent cannot continue ``thread``.

        Local threads move freely between agents whose clients keep history locally. A
        service-managed thread can only be continued through a client of the same service.
        """
        client = self.chat_client
        who = f"agent {self.name or self.id!r}"
        if thread.service_thread_id is not None:
            owner = thread.binding.service if thread.binding else None
            if not client.stores_history:
                raise IncompatibleThreadError(
                    f"thread {thread.id!r} is kept by service {owner!r} (conversation "
                    f"{thread.service_thread_id!r}), but {who} keeps history locally with "
                    f"{type(client).__name__}; continue it with an agent on that service, or "
                    "start a new thread with agent.get_new_thread()"
                )
            if owner is not None and owner != client.service_name:
                raise IncompatibleThreadError(
                    f"thread {thread.id!r} belongs to service {owner!r}, but {who} talks to "
                    f"{client.service_name!r}; a service-managed thread only continues in the "
                    "service that holds it"
                )
        elif thread.message_store is not None and client.stores_history:
            raise IncompatibleThreadError(
                f"thread {thread.id!r} keeps its messages locally, but {who}'s client "
                f"{type(client).__name__} ({client.service_name!r}) keeps history in its service; "
                "use an agent whose client keeps history locally, or start a new thread with "
                "agent.get_new_thread()"
            )

    def _prepare_thread(self, thread: AgentThread | None) -> AgentThread:
        if thread is None:
            return self.get_new_thread()
        if not isinstance(thread, AgentThread):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"thread must be an AgentThread, got {type(thread).__name__}")
        self.check_thread(thread)
        if not thread.is_initialized and not self.chat_client.stores_history:
            thread.message_store = self._new_store()
        if thread.binding is None and thread.message_store is not None:
            thread.binding = self._binding()
        thread.attach(self._provider_map, self.chat_client)
        return thread

    async def deserialize_thread(self, state: Mapping[str, Any]) -> AgentThread:
        """Restore a thread from ``thread.serialize()``: its store, provider state and binding.

        Restoring replaces rather than merges, so doing it twice never duplicates messages.

        Raises:
            ThreadStateError: the state is malformed, of an unknown version or of an unknown store.
            IncompatibleThreadError: the thread cannot be continued by this agent.
        """
        parsed = parse_thread_state(state)
        thread = AgentThread(thread_id=parsed.thread_id, user_id=parsed.user_id)
        if parsed.service_thread_id is not None:
            thread.service_thread_id = parsed.service_thread_id
        elif parsed.store_kind is not None and parsed.store_state is not None:
            thread.message_store = await restore_store(
                parsed.store_kind, parsed.store_state, self.chat_message_store_factory
            )
        if parsed.service is not None or parsed.agent_id is not None or parsed.store_kind:
            thread.binding = ThreadBinding(
                service=parsed.service, agent_id=parsed.agent_id, agent_name=parsed.agent_name
            )
        thread.context_state = parsed.context_state
        self.check_thread(thread)
        thread.attach(self._provider_map, self.chat_client)
        return thread

    async def add_chat_message(
        self,
        message: str | ChatMessage | Sequence[str | ChatMessage],
        *,
        thread: AgentThread | None = None,
    ) -> AgentThread:
        """Add messages to ``thread`` without a model call: the ADR's ``AddChatMessage``.

        Used to let an agent see what others said (a group chat's propagation) or to seed a
        thread with an existing history. A local thread's append goes through the store's version
        check, so a concurrent writer gets ``ConcurrentThreadUpdateError`` rather than an
        interleaved history. Returns the thread (a new one when none was given).

        Raises:
            UsageError: the thread is kept by a service whose client cannot take messages without
                running the model (it does not implement ``SupportsAddMessages``).
            ConcurrentThreadUpdateError: another writer changed the thread meanwhile.
        """
        messages = as_messages(message)
        thread = self._prepare_thread(thread)
        async with thread._lock:
            store = thread.message_store
            if store is not None:
                if messages:
                    version = len(await read_thread(store))
                    await traced_append(
                        store, thread.id, messages, expected_version=version, parent=None
                    )
                return thread
            client = self.chat_client
            if not isinstance(client, SupportsAddMessages):
                raise UsageError(
                    f"agent {self.name or self.id!r} keeps history in service "
                    f"{client.service_name!r}, whose client {type(client).__name__} cannot add "
                    "messages without running the model; use a client that keeps history "
                    "locally or one that implements SupportsAddMessages"
                )
            conversation_id = await client.add_conversation_messages(
                thread.service_thread_id, messages
            )
            if thread.service_thread_id is None:
                thread.service_thread_id = conversation_id
                thread.binding = self._binding()
        return thread

    # -- runs --------------------------------------------------------------------------------

    async def _run_tools(self, tools: Sequence[ToolInput] | None) -> dict[str, FunctionTool]:
        """The tools of one run: the agent's, this run's (which win), then the sources' tools.

        A source's tool may not take the name of another tool: which one the model meant would
        be a guess.
        """
        mapped = {**self.tools, **self._tool_map(tools)} if tools else self.tools
        sources = (*self.tool_sources, *self._sources(tools)) if tools else self.tool_sources
        if not sources:
            return mapped
        mapped = dict(mapped)
        for source in sources:
            for found in await source.get_tools():
                if found.name in mapped:
                    raise UsageError(
                        f"tool source {source.name!r} offers a tool named {found.name!r}, but "
                        "another tool of the run has that name; leave one out (e.g. with the "
                        "source's allowed_tools=) or rename the other"
                    )
                mapped[found.name] = found
        return mapped

    async def _begin(
        self,
        thread: AgentThread,
        input_messages: list[ChatMessage],
        tools: Sequence[ToolInput] | None,
        options: RunOptions,
        *,
        stream: bool,
    ) -> Turn:
        """Start a turn, and its ``invoke_agent`` span (ended by the run loop, or here on error)."""
        span = None
        observed = False
        if tr.observing():  # checked here: a turn with neither traces nor metrics pays one call
            if tr.tracing_on():
                span = agent_span(
                    name=self.name,
                    agent_id=self.id,
                    description=self.description,
                    client=self.chat_client,
                    thread=thread,
                    stream=stream,
                )
            observed = span is not None or tr.metrics_on()
        try:
            # Not made current: the turn's spans name it as their parent (a span is never held
            # current across the yields of run_stream).
            turn = await begin_turn(
                thread=thread,
                client=self.chat_client,
                input_messages=input_messages,
                instructions=self.instructions,
                system_messages=self._system,
                providers=self.context_providers,
                tools=await self._run_tools(tools) if tools or self.tool_sources else self.tools,
                options={**self.default_options, **options} if options else self.default_options,
                author_name=self.name,
                binding=self._binding(),
                span=span,
                observed=observed,
                compaction=self.compaction,
            )
            if turn.store is None:
                check_store(thread, turn.tools)
            elif may_answer(turn.history, input_messages):
                # Checked before anything is written: a bad answer changes nothing.
                turn.resolution = check_answers(thread, turn.history, input_messages)
                if turn.resolution is not None and turn.resolution.claim is not None:
                    turn.input = []  # the answer is stored as the claim, before its calls run
            return turn
        except BaseException as exc:
            tr.end_error(span, exc)
            raise

    async def run(
        self,
        messages: AgentInput = None,
        *,
        thread: AgentThread | None = None,
        tools: Sequence[ToolInput] | None = None,
        **options: Unpack[RunOptions],
    ) -> AgentRunResponse:
        """Run one turn and return everything the agent produced.

        Without ``thread`` a throwaway thread is created; ``response.thread`` continues it. When
        the model calls a deferred tool (one without a Python function), the run stops with the
        calls in ``response.pending_calls``; pass their results as the next run's input.
        ``tools`` are added to the agent's for this run only (one named like an agent tool
        replaces it for the run); ``options`` override ``default_options``.

        Raises:
            IncompatibleThreadError: before any model call, when this agent cannot use ``thread``.
            ConcurrentThreadUpdateError: another writer changed the thread's store meanwhile.
            ClientError: the model call failed; the input is still stored in a local thread,
                marked unanswered (an ``ErrorContent`` with ``error_code="turn_failed"``).
            AgentRunError: the model still called tools after ``max_tool_iterations`` rounds.
        """
        input_messages = as_messages(messages)
        thread = self._prepare_thread(thread)
        async with thread._lock:
            turn = await self._begin(
                thread, input_messages, tools, RunOptions(**options), stream=False
            )
            async for _ in self._loop(turn, stream=False):
                pass  # not streaming: the loop yields nothing and leaves its outcome in turn
        return response_of(turn)

    def _loop(self, turn: Turn, *, stream: bool) -> AsyncGenerator[AgentRunResponseUpdate, None]:
        return run_loop(turn, max_tool_iterations=self.max_tool_iterations, stream=stream)

    async def run_stream(
        self,
        messages: AgentInput = None,
        *,
        thread: AgentThread | None = None,
        tools: Sequence[ToolInput] | None = None,
        **options: Unpack[RunOptions],
    ) -> AsyncGenerator[AgentRunResponseUpdate, None]:
        """Run one turn, yielding text as it is generated and each tool call and result whole.

        The thread is updated when the stream ends. A caller that stops iterating early leaves the
        thread with the turn's input stored and nothing of the partial answer. A call to a
        deferred tool is yielded like any call, and the stream then ends (see ``run``).
        """
        input_messages = as_messages(messages)
        thread = self._prepare_thread(thread)
        async with thread._lock:
            turn = await self._begin(
                thread, input_messages, tools, RunOptions(**options), stream=True
            )
            # aclosing: a consumer that stops early closes the loop now, under the lock, so the
            # turn is failed before the next run may start.
            async with aclosing(self._loop(turn, stream=True)) as updates:
                async for update in updates:
                    yield update

    def run_sync(
        self,
        messages: AgentInput = None,
        *,
        thread: AgentThread | None = None,
        tools: Sequence[ToolInput] | None = None,
        **options: Unpack[RunOptions],
    ) -> AgentRunResponse:
        """``run`` for synchronous code: starts an event loop, so it cannot be called inside one."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(messages, thread=thread, tools=tools, **options))
        raise UsageError("run_sync() cannot be called from a running event loop; await agent.run()")
