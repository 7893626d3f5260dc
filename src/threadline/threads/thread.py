"""``AgentThread``: the state of one conversation, kept apart from the (stateless) agent.

A thread is *service-managed* (it holds only the id of a conversation a remote service keeps),
*local* (it holds a message store), or *unbound* (new, and bound on its first run). It is never
both: the two setters refuse it.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from threadline.exceptions import UsageError
from threadline.threads.state import SCHEMA_VERSION, THREAD_STATE_TYPE, check_thread_id
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.types.contents import JSONValue

__all__ = [
    "AgentThread",
    "SupportsConversationFork",
    "ThreadBinding",
    "ThreadHooks",
    "new_thread_id",
]


@runtime_checkable
class SupportsConversationFork(Protocol):
    """A client whose service can branch a stored conversation (used by ``AgentThread.fork``).

    Declared here, beside the thread that needs it, so threads never import the clients: any
    client with this method (OpenAI Responses, ``ScriptedChatClient``) satisfies it structurally.
    """

    async def fork_conversation(self, conversation_id: str) -> str:
        """Return the id of a new conversation holding the same history as ``conversation_id``."""
        ...


class ThreadHooks(Protocol):
    """What a thread calls on the context providers that own it (``ContextProvider`` has both).

    Declared here so the thread does not depend on the memory package above it.
    """

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        """Flush per-thread state before the thread is serialized."""
        ...

    async def thread_ended(self, thread: AgentThread) -> None:
        """The conversation is over."""
        ...


def new_thread_id() -> str:
    """A fresh random thread id."""
    return "thread_" + os.urandom(12).hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadBinding:
    """What a thread belongs to; checked before every run so a thread never goes to the wrong place.

    ``service`` is set for service-managed threads (the ``service_name`` of the client whose service
    keeps the conversation); local threads have none and can move between agents freely.
    """

    service: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        """The JSON form: every field, ``None`` ones as ``null``."""
        return {"service": self.service, "agent_id": self.agent_id, "agent_name": self.agent_name}


class AgentThread:
    """One conversation's state: a service conversation id or a message store, plus memory state.

    Args:
        service_thread_id: the id of a conversation kept by a service.
        message_store: where a local thread keeps its messages.
        thread_id: a stable id for this thread; generated when omitted.
        user_id: whose conversation this is. Memory that outlives the thread (user preferences,
            past conversations) is scoped by it; saved with the thread.

    Raises:
        UsageError: both ``service_thread_id`` and ``message_store`` were given.
    """

    def __init__(
        self,
        *,
        service_thread_id: str | None = None,
        message_store: ChatMessageStore | None = None,
        thread_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        if service_thread_id is not None and message_store is not None:
            raise UsageError(
                "a thread holds a service_thread_id or a message_store, never both: a service "
                "keeps the history of a service-managed thread, a store that of a local one"
            )
        self.id: str = (
            check_thread_id(thread_id, error=ValueError) if thread_id else new_thread_id()
        )
        """Stable across serialization; context providers key per-thread memory by it."""
        if user_id is not None and (not isinstance(user_id, str) or not user_id):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"user_id must be a non-empty string or None, got {user_id!r}")
        self.user_id: str | None = user_id
        """Whose conversation this is; long-term memory is scoped by it. ``None``: anonymous."""
        self._service_thread_id = service_thread_id
        self._message_store = message_store
        self.binding: ThreadBinding | None = None
        """Set by the first agent that runs on this thread (or restored with it)."""
        self.context_state: dict[str, dict[str, Any]] = {}
        """Per-thread state of each context provider by ``state_key``; saved with the thread."""
        self._providers: dict[str, ThreadHooks] = {}
        self._client: object | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        if self._service_thread_id is not None:
            where = f"service_thread_id={self._service_thread_id!r}"
        elif self._message_store is not None:
            where = f"message_store={store_kind(self._message_store)}"
        else:
            where = "unbound"
        user = f", user_id={self.user_id!r}" if self.user_id is not None else ""
        return f"AgentThread(id={self.id!r}, {where}{user})"

    @property
    def service_thread_id(self) -> str | None:
        """The service's conversation id, for service-managed threads."""
        return self._service_thread_id

    @service_thread_id.setter
    def service_thread_id(self, value: str | None) -> None:
        if value is not None and self._message_store is not None:
            raise UsageError(
                f"thread {self.id!r} keeps its messages in a local store; it cannot also take "
                f"service_thread_id {value!r}"
            )
        self._service_thread_id = value

    @property
    def message_store(self) -> ChatMessageStore | None:
        """Where a local thread keeps its messages."""
        return self._message_store

    @message_store.setter
    def message_store(self, value: ChatMessageStore | None) -> None:
        if value is not None and self._service_thread_id is not None:
            raise UsageError(
                f"thread {self.id!r} is kept by a service (id {self._service_thread_id!r}); it "
                "cannot also take a message store"
            )
        self._message_store = value

    @property
    def is_service_managed(self) -> bool:
        """True when a service keeps this thread's history."""
        return self._service_thread_id is not None

    @property
    def is_initialized(self) -> bool:
        """True once the thread is bound to a service conversation or a store."""
        return self._service_thread_id is not None or self._message_store is not None

    def attach(self, providers: Mapping[str, ThreadHooks], client: object | None) -> None:
        """Called by agents as they take the thread: its providers now own checkpoint and end.

        The rule is "the agent that last prepared the thread owns its providers": attaching
        replaces the previous agent's providers instead of adding to them, so ``serialize()`` and
        ``end()`` call only the current agent's hooks. Other providers' saved state stays in
        ``context_state`` untouched and is serialized as it is, ready for when their agent takes
        the thread again. ``client`` is the one ``fork()`` asks to branch a service conversation.
        """
        self._providers = dict(providers)
        if client is not None:
            self._client = client

    async def serialize(self) -> dict[str, Any]:
        """The thread's whole state as a plain JSON-able dict, for ``agent.deserialize_thread``.

        A service-managed thread saves its conversation id only; a local one its store's full state.
        Every key is written, ``null`` where empty, so a state missing one is known to be damaged.
        Context providers are checkpointed first, so their latest per-thread state is included.
        """
        for provider in self._providers.values():
            await provider.thread_checkpoint(self)
        state: dict[str, Any] = {
            "type": THREAD_STATE_TYPE,
            "schema_version": SCHEMA_VERSION,
            "thread_id": self.id,
            "user_id": self.user_id,
            "binding": (self.binding or ThreadBinding()).to_dict(),
            "service_thread_id": self._service_thread_id,
            "store": None,
        }
        if self._message_store is not None:
            state["store"] = {
                "kind": store_kind(self._message_store),
                "state": await self._message_store.serialize(),
            }
        state["context_providers"] = copy.deepcopy(self.context_state)
        return state

    async def fork(self) -> AgentThread:
        """An independent branch: what either side adds later is not seen by the other.

        Local threads fork their store (copy-on-write where the store allows); service-managed
        threads ask the service to branch the conversation. Context provider state is copied.

        Raises:
            UsageError: the thread's service cannot branch conversations.
        """
        branch = AgentThread(user_id=self.user_id)
        if self._service_thread_id is not None:
            client = self._client
            if not isinstance(client, SupportsConversationFork):
                raise UsageError(
                    f"thread {self.id!r} is kept by service "
                    f"{self.binding.service if self.binding else None!r}, whose client "
                    f"{type(client).__name__} cannot branch conversations (it does not implement "
                    "SupportsConversationFork.fork_conversation); fork it through an agent whose "
                    "client supports forking"
                )
            branch._service_thread_id = await client.fork_conversation(self._service_thread_id)
        elif self._message_store is not None:
            branch._message_store = await self._message_store.fork()
        branch.binding = self.binding
        branch.context_state = copy.deepcopy(self.context_state)
        branch._providers = dict(self._providers)
        branch._client = self._client
        return branch

    async def end(self) -> None:
        """Tell the thread's context providers the conversation is over (``thread_ended``).

        The history itself is kept; deleting a service conversation is up to its owner.
        """
        for provider in self._providers.values():
            await provider.thread_ended(self)
