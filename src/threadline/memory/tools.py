"""``remember``, ``recall`` and ``forget``: the memory tools a model may call (the ADR's plugins).

The tools are built per call for one user, so their scope is fixed before the model sees them:
whatever ids or queries the model sends, it reads and deletes only that user's memories. A forget
of an id that is not the user's does nothing and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.memory import _traced as traced
from threadline.memory._scoping import Scoping
from threadline.memory._text import excerpt, format_date
from threadline.memory.records import MemoryRecord
from threadline.memory.store import MemoryStore
from threadline.tools import FunctionTool, as_tool

__all__ = ["memory_tools"]


def memory_tools(store: MemoryStore, scoping: Scoping, user_id: str) -> tuple[FunctionTool, ...]:
    """The three memory tools, confined to ``user_id``'s memories in ``store``."""
    write = scoping.write_scope(user_id)
    read = scoping.read_scope(user_id)

    async def remember(fact: str) -> str:
        """Store a durable fact or preference about the user for future conversations.

        Args:
            fact: one self-contained statement, e.g. "The user is vegetarian."
        """
        fact = fact.strip()
        if not fact:
            return "Nothing remembered: the fact was empty."
        for record in await store.list(scope=write, kinds=["fact", "preference"]):
            if record.text.casefold() == fact.casefold():
                return f"Already remembered as {record.id}."
        record = MemoryRecord(
            kind="fact",
            text=fact,
            scope=write,
            occurred_at=datetime.now(UTC),
            metadata={"source": "tool"},
        )
        await traced.add(store, [record], operation="remember")
        return f"Remembered as {record.id}."

    async def recall(query: str) -> str:
        """Search what is remembered about the user and their past conversations.

        Args:
            query: what to look for, in words.
        """
        hits = await traced.search(store, query, scope=read, limit=5)
        if not hits:
            return "Nothing relevant is remembered."
        lines: list[str] = []
        for hit in hits:
            when = format_date(hit.occurred_at) if hit.occurred_at else "date unknown"
            lines.append(f"{hit.id} ({hit.record.kind}, {when}): {excerpt(hit.text, 400)}")
        return "\n".join(lines)

    async def forget(memory_id: str) -> str:
        """Delete one remembered item of the user by its id (as shown by recall).

        Args:
            memory_id: the id of the memory to delete, e.g. "mem_0123...".
        """
        if await store.get(memory_id, scope=read) is None:
            return f"No memory {memory_id!r} of this user exists; nothing was forgotten."
        deleted = await store.delete([memory_id], scope=read)
        return f"Forgot {memory_id}." if deleted else f"Nothing was forgotten for {memory_id!r}."

    return (as_tool(remember), as_tool(recall), as_tool(forget))
