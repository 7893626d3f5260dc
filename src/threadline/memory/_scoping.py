"""Whose memories a component reads and writes, and the store it uses when given none."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from threadline.exceptions import UsageError
from threadline.memory.records import MemoryScope
from threadline.memory.store import Embedder, MemoryStore

if TYPE_CHECKING:
    from threadline.threads.thread import AgentThread

__all__ = ["DEFAULT", "ReadScope", "Scoping", "default_store", "require_user"]

logger = logging.getLogger("threadline.memory")

ReadScope = Literal["user", "agent"]
"""``"user"``: read every memory of the user (any agent); ``"agent"``: only this agent's."""


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Sentinel: "use the default" where ``None`` already means "none"."""


def require_user(thread: AgentThread, component: str) -> str:
    """The thread's user, or a ``UsageError`` naming the fix (silence would look like amnesia)."""
    if not thread.user_id:
        raise UsageError(
            f"{component} remembers per user, but thread {thread.id!r} has no user_id; start it "
            "with agent.get_new_thread(user_id=...) (or AgentThread(user_id=...))"
        )
    return thread.user_id


@dataclass(frozen=True, slots=True)
class Scoping:
    """The write scope and the (possibly wider) read scope of a component, for one user."""

    agent_id: str | None = None
    app_id: str | None = None
    read: ReadScope = "user"

    def __post_init__(self) -> None:
        if self.read not in ("user", "agent"):
            raise ValueError(f"read_scope must be 'user' or 'agent', got {self.read!r}")
        if self.read == "agent" and self.agent_id is None:
            raise UsageError("read_scope='agent' needs an agent_id to read by; pass agent_id=...")

    def write_scope(self, user_id: str) -> MemoryScope:
        """Where new memories of ``user_id`` go."""
        return MemoryScope(user_id=user_id, agent_id=self.agent_id, app_id=self.app_id)

    def read_scope(self, user_id: str) -> MemoryScope:
        """What is searched for ``user_id``: always that user only."""
        agent = self.agent_id if self.read == "agent" else None
        return MemoryScope(user_id=user_id, agent_id=agent, app_id=self.app_id)


def default_store(embedder: Embedder | None | Any = DEFAULT, path: Any = None) -> MemoryStore:
    """The embedded durable store (``SQLiteMemoryStore``, under ``$THREADLINE_HOME``).

    ``embedder`` left at ``DEFAULT`` means the embedded MiniLM model when its extra is installed;
    ``None`` means lexical search only.
    """
    # Imported here: the store and the embedder load on first use, not with the package.
    from threadline.memory.embedders import default_embedder
    from threadline.memory.stores import SQLiteMemoryStore

    if embedder is DEFAULT:
        embedder = default_embedder()
    return SQLiteMemoryStore(path, embedder=embedder)
