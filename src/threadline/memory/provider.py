"""``ContextProvider``: the memory component of the ADR, plugged into every model call.

A provider sees each turn's input before the model does (``invoking``) and the outcome after
(``invoked``), may add instructions, messages and tools to the call, and keeps per-thread state in
``thread.context_state`` so the state is saved and restored with the thread. Providers belong to an
agent and serve many threads, so they must keep anything thread-specific in that state (or key it
by ``thread.id``), never in plain attributes.

It is a base class rather than a Protocol so a provider overrides only the hooks it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from threadline.memory.context import Context
from threadline.types.messages import ChatMessage

if TYPE_CHECKING:
    from threadline.threads.thread import AgentThread

__all__ = ["ContextProvider"]

_EMPTY = Context()


class ContextProvider:
    """Base class for memory components; every hook is a no-op until overridden."""

    @property
    def state_key(self) -> str:
        """The key of this provider's state in ``thread.context_state``.

        Defaults to the class name; override it when one agent holds two providers of one class.
        """
        return type(self).__name__

    def state(self, thread: AgentThread) -> dict[str, Any]:
        """This provider's mutable, JSON-able state for ``thread``, saved with the thread."""
        return thread.context_state.setdefault(self.state_key, {})

    async def thread_created(self, thread: AgentThread) -> None:
        """Called once per thread, before the provider's first ``invoking`` on it."""

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        """Called before each model call with the turn's new input; returns what to add to it."""
        return _EMPTY

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        """Called after each run with its input and what the agent produced, or the error."""

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        """Called before the thread is serialized: flush anything not yet in ``state(thread)``."""

    async def thread_ended(self, thread: AgentThread) -> None:
        """Called by ``thread.end()`` when the conversation is over."""
