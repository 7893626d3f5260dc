"""The saved threads of the ``threadline`` command: one SQLite file, one store per thread.

Design: a thread's id *is* its id in the SQLite store, so the database alone is the catalogue;
nothing else needs to be kept in sync. The command's agent has no context providers, so a thread's
state is fully rebuilt from its id (``AgentThread(message_store=..., thread_id=id)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

import platformdirs

from threadline.exceptions import StoreError, UsageError
from threadline.threads.portable import PortableThread
from threadline.threads.state import check_thread_id
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.database import PrunableDatabase, ThreadInfo
from threadline.threads.stores.opener import open_database
from threadline.threads.stores.retention import PruneResult
from threadline.threads.thread import AgentThread, new_thread_id
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage, Role

__all__ = ["ThreadLibrary", "ThreadSummary", "default_home", "summary_json"]

DB_FILE = "threads.db"


def default_home() -> Path:
    """``$THREADLINE_HOME``, or the per-user data directory of this platform."""
    home = os.environ.get("THREADLINE_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("threadline", appauthor=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSummary:
    """One saved thread, as listed."""

    thread_id: str
    messages: int
    updated_at: float
    parent_id: str | None
    title: str
    """The start of the first user message, for humans scanning a list."""
    error: str | None = None
    """Why the thread cannot be read (corrupt data), when it cannot; listed, not hidden."""


class ThreadLibrary:
    """The threads saved in one SQLite file."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.db = home / DB_FILE
        self.database = open_database(f"sqlite:{self.db}")
        """Where the threads are: opened like every command's store (``sqlite:PATH``)."""
        self.user_id: str | None = None
        """Given to every thread this library hands out: whose memories its chats use."""

    def new_thread(self) -> AgentThread:
        """A new thread; it is saved with its first message."""
        return self.thread(new_thread_id())

    def _store(self, thread_id: str) -> ChatMessageStore:
        return self.database.store(thread_id)

    def thread(self, thread_id: str) -> AgentThread:
        """The thread with this id (not checked: see :meth:`resolve`)."""
        store = self._store(thread_id)
        return AgentThread(message_store=store, thread_id=thread_id, user_id=self.user_id)

    async def messages(self, thread_id: str) -> list[ChatMessage]:
        """A thread's whole history."""
        return await self._store(thread_id).list_messages()

    async def summaries(self) -> list[ThreadSummary]:
        """All saved threads, most recently updated first.

        A thread that cannot be read (corrupt rows, an invalid id written by another program) is
        listed with the reason in ``error``: one bad thread never hides the others.
        """
        if not self.db.exists():  # don't create a database just to find it empty
            return []
        out: list[ThreadSummary] = []
        for info in await self.database.list_threads():
            out.append(await self._summary(info))
        return out

    async def _summary(self, info: ThreadInfo) -> ThreadSummary:
        thread_id = str(info.thread_id)
        parent_id = None if info.parent_id is None else str(info.parent_id)
        # Any type can sit in a SQLite column: a bad value must not break the listing.
        raw_updated = cast(object, info.updated_at)
        updated_at = raw_updated if isinstance(raw_updated, int | float) else 0.0
        count = info.version if type(info.version) is int else 0
        try:
            messages = await self.messages(thread_id)
        except (StoreError, ValueError) as exc:  # ValueError: an id no thread may have
            return ThreadSummary(
                thread_id=thread_id,
                messages=count,
                updated_at=updated_at,
                parent_id=parent_id,
                title="",
                error=str(exc),
            )
        first = next((m.text for m in messages if m.role == Role.USER and m.text), "")
        return ThreadSummary(
            thread_id=thread_id,
            messages=len(messages),
            updated_at=updated_at,
            parent_id=parent_id,
            title=" ".join(first.split())[:60],
        )

    async def exists(self, thread_id: str) -> bool:
        """True when a thread with this exact id is saved."""
        return any(s.thread_id == thread_id for s in await self._ids())

    async def _ids(self) -> list[ThreadSummary]:
        if not self.db.exists():
            return []
        return [
            ThreadSummary(
                thread_id=i.thread_id,
                messages=i.version,
                updated_at=i.updated_at,
                parent_id=i.parent_id,
                title="",
            )
            for i in await self.database.list_threads()
        ]

    async def resolve(self, id_or_prefix: str) -> str:
        """The full id of a saved thread, from its id or an unambiguous start of it.

        Raises:
            UsageError: no thread, or several, match.
        """
        check_thread_id(id_or_prefix, field="thread id (or start of one)", error=UsageError)
        ids = [s.thread_id for s in await self._ids()]
        if id_or_prefix in ids:
            return id_or_prefix
        matches = [i for i in ids if i.startswith(id_or_prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UsageError(
                f"no saved thread {id_or_prefix!r} in {str(self.db)!r}; "
                "see `threadline threads list`"
            )
        shown = ", ".join(repr(m) for m in matches[:3])
        raise UsageError(
            f"{id_or_prefix!r} matches {len(matches)} threads ({shown}, ...); give more of the id"
        )

    async def fork(self, thread_id: str) -> str:
        """Branch a saved thread; returns the new thread's id. No message is copied."""
        child = await self._store(thread_id).fork()
        return str(getattr(child, "thread_id"))  # noqa: B009 - every database store has one

    async def prune(self, older_than: timedelta, *, dry_run: bool = False) -> PruneResult:
        """Delete threads last updated before ``older_than`` ago (forks' parents are kept)."""
        database = self.database
        if not isinstance(database, PrunableDatabase):  # every shipped database is
            raise UsageError(f"{database!r} cannot delete old threads")
        return await database.delete_threads(older_than=older_than, dry_run=dry_run)

    async def delete(self, thread_id: str) -> None:
        """Delete a saved thread; its forks keep their history."""
        await self._store(thread_id).delete()

    async def import_thread(self, portable: PortableThread, *, new_id: bool = False) -> str:
        """Save a validated portable thread; returns its id here.

        Raises:
            UsageError: a thread with that id is already saved (nothing is written).
        """
        thread_id = new_thread_id() if new_id else portable.state.thread_id
        if await self.exists(thread_id):
            raise UsageError(
                f"thread {thread_id!r} is already saved in {str(self.db)!r}; nothing was imported. "
                "Delete it first, or import with --new-id to save a copy under a new id"
            )
        store = self._store(thread_id)
        # expected_version=0: one transaction that fails if the thread appeared meanwhile.
        await store.add_messages(portable.messages, expected_version=0)
        return thread_id


def summary_json(summary: ThreadSummary) -> dict[str, JSONValue]:
    """A summary's JSON form."""
    return {
        "thread_id": summary.thread_id,
        "messages": summary.messages,
        "updated_at": summary.updated_at,
        "parent_id": summary.parent_id,
        "title": summary.title,
        "error": summary.error,
    }
