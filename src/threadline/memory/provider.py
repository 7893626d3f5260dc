"""``ContextProvider``: the memory component of the ADR, plugged into every model call.

A provider sees each turn's input before the model does (``invoking``) and the outcome after
(``invoked``), may add instructions, messages and tools to the call, and keeps per-thread state in
``thread.context_state`` so the state is saved and restored with the thread. Providers belong to an
agent and serve many threads, so they must keep anything thread-specific in that state (or key it
by ``thread.id``), never in plain attributes.

When agents share a thread, the agent that last prepared it owns its providers: only theirs are
checkpointed on ``thread.serialize()`` and ended on ``thread.end()``, while other providers' state
stays in the thread untouched (see docs/threads.md).

It is a base class rather than a Protocol so a provider overrides only the hooks it needs.

Learning never fails a turn: by the time ``invoked`` runs, the turn is stored and answered, so a
provider that cannot write what it learnt (its store is down, refuses a record) logs a warning
with ``_learning_failed`` and tries again later, instead of raising.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from threadline.exceptions import UsageError
from threadline.memory.context import Context
from threadline.types.messages import ChatMessage

if TYPE_CHECKING:
    from threadline.threads.thread import AgentThread

__all__ = ["ContextProvider"]

logger = logging.getLogger("threadline.memory")

_EMPTY = Context()


class ContextProvider:
    """Base class for memory components; every hook is a no-op until overridden.

    Args:
        state_key: the key of this provider's per-thread state in ``thread.context_state``;
            defaults to the class name. Give each instance its own when one agent holds two
            providers of one class (two scopes, two configurations).
    """

    holds_user_data: bool = False
    """True for a provider that remembers user data beyond the thread (preferences, past
    conversations). Multi-agent runners consult such a provider only on behalf of agents allowed to
    see the user's data; memory components that remember across threads set it to ``True``."""

    _state_key: str | None = None
    _failures: set[str] | None = None

    def __init__(self, *, state_key: str | None = None) -> None:
        if state_key is not None and (not isinstance(state_key, str) or not state_key):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"state_key must be a non-empty string, got {state_key!r}")
        fixed = type(self).state_key
        if state_key is not None and not isinstance(fixed, property):
            # A subclass that sets state_key as a class attribute would silently ignore this one.
            raise UsageError(
                f"{type(self).__name__} fixes state_key={fixed!r} as a class attribute, so "
                f"state_key={state_key!r} would be ignored; remove the class attribute and pass "
                "state_key=... to the constructor (the class name is the default)"
            )
        self._state_key = state_key

    @property
    def state_key(self) -> str:
        """The key of this provider's state in ``thread.context_state`` (class name by default)."""
        return self._state_key or type(self).__name__

    @state_key.setter
    def state_key(self, value: str) -> None:
        if not isinstance(value, str) or not value:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"state_key must be a non-empty string, got {value!r}")
        self._state_key = value

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

    def _learning_failed(self, exc: Exception, what: str) -> None:
        """Log that learning ``what`` failed: one warning per cause until learning works again.

        A store that is down fails every turn the same way; one warning says so without flooding
        the log, and a new cause (or the same one after a recovery) is logged again. Only the
        error's first line is kept: database errors go on to quote the refused row, which is the
        user's text and has no place in a log.
        """
        first = str(exc).strip().split("\n", 1)[0]
        cause = f"{type(exc).__name__}: {first[:300]}"
        if self._failures is None or len(self._failures) >= 100:  # causes that vary: stay bounded
            self._failures = set()
        if cause in self._failures:
            return
        self._failures.add(cause)
        logger.warning(
            "%s could not learn %s (%s); the turn is unaffected, and the next one will retry",
            type(self).__name__,
            what,
            cause,
        )

    def _learning_worked(self) -> None:
        """Forget the causes already logged, so the next failure is reported again."""
        self._failures = None
