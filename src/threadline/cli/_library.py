"""The saved threads of the ``threadline`` command: one SQLite file of threads and their states.

Design: a chat's id *is* its id in the SQLite store, and its ``serialize()`` state (what the
memory providers keep per thread: turn numbering, the summary's id...) is a record beside it in
the same file (``threadline_records``, kind :data:`STATE_KIND`), written by the chat after each
turn and when it ends, and restored with ``agent.deserialize_thread``. A group chat is saved the
same way: its transcript is the thread named by the group's id (``group_<hex>``), each
participant's own thread is ``<group id>.<name>`` (:func:`participant_thread_id`), and its
``MultiAgentThread.serialize()`` state is the record. Listing shows a group once, by its
transcript, and hides its participants' threads.

The layout is a rule, not a convention (``_saved_state.py``): a saved state whose ids break it is
refused (:meth:`ThreadLibrary.saved_state`), so a crafted state can never point a chat at another
thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import platformdirs

from threadline.cli._saved_state import check_layout, damaged, is_group_state, moved
from threadline.exceptions import StoreError, ThreadStateError, UsageError
from threadline.multiagent.thread import participant_thread_id
from threadline.threads.portable import PortableThread
from threadline.threads.state import check_thread_id
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.database import PrunableDatabase, RecordDatabase, ThreadInfo
from threadline.threads.stores.opener import open_database
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.retention import PruneResult
from threadline.threads.thread import AgentThread, new_thread_id
from threadline.types.contents import JSONValue
from threadline.types.messages import ChatMessage, Role

__all__ = ["STATE_KIND", "ThreadLibrary", "ThreadSummary", "default_home", "summary_json"]

DB_FILE = "threads.db"
STATE_KIND = "cli_thread_state"
"""The record kind of a saved chat's or group chat's ``serialize()`` state."""
_ALL = 1_000_000
"""More states than a person's library holds: list them all."""


def default_home() -> Path:
    """``$THREADLINE_HOME``, or the per-user data directory of this platform."""
    home = os.environ.get("THREADLINE_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("threadline", appauthor=False))


def check_home(home: Path, *, create: bool = True) -> Path:
    """``home`` when threads can be kept there (created when missing, if ``create``).

    Raises:
        UsageError: it is a file, or cannot be created or written; the message names it.
    """
    if home.exists() and not home.is_dir():
        raise UsageError(
            f"THREADLINE_HOME {str(home)!r} is a file, not a folder; point THREADLINE_HOME or "
            "--home at a folder"
        )
    if not create and not home.exists():
        existing = next((p for p in home.parents if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise UsageError(
                f"cannot use THREADLINE_HOME {str(home)!r}: {str(existing)!r} is a file; point "
                "THREADLINE_HOME or --home at a folder you can write"
            )
        return home  # made by the first write, if any
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot use THREADLINE_HOME {str(home)!r}: {exc.strerror or exc}; point "
            "THREADLINE_HOME or --home at a folder you can write"
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write to THREADLINE_HOME {str(home)!r}; point THREADLINE_HOME or --home at "
            "a folder you can write"
        )
    return home


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
    participants: tuple[str, ...] = ()
    """A group chat's agents; empty for a chat with one assistant."""


class ThreadLibrary:
    """The threads, group chats and their saved states in one SQLite file."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.db = home / DB_FILE
        self.database = cast(RecordDatabase, open_database(f"sqlite:{self.db}"))
        """Where the threads are: opened like every command's store (``sqlite:PATH``)."""
        self.user_id: str | None = None
        """Given to every thread this library hands out: whose memories its chats use."""

    def store(self, thread_id: str | None = None) -> ChatMessageStore:
        """The store of a thread of this library (a new id when None): agents' store factory."""
        return self.database.store(thread_id)

    def new_thread(self) -> AgentThread:
        """A new thread; it is saved with its first message."""
        return self.thread(new_thread_id())

    def thread(self, thread_id: str) -> AgentThread:
        """The thread with this id, without its saved state (not checked: see :meth:`resolve`)."""
        return AgentThread(
            message_store=self.store(thread_id), thread_id=thread_id, user_id=self.user_id
        )

    async def messages(self, thread_id: str) -> list[ChatMessage]:
        """A thread's whole history (a group chat's: its transcript)."""
        return await self.store(thread_id).list_messages()

    # -- saved states ----------------------------------------------------------------------

    async def save_state(self, state: dict[str, Any]) -> None:
        """Keep a chat's or group chat's ``serialize()`` state (replacing the previous one)."""
        thread_id = str(state["thread_id"])
        record = ThreadRecord(kind=STATE_KIND, id=thread_id, thread_id=thread_id, body=state)
        await self.database.commit(ThreadBatch().put(record))

    async def saved_state(self, thread_id: str) -> dict[str, Any]:
        """The saved state of a thread, checked against the library's layout.

        Raises:
            ThreadStateError: there is none (a thread saved by another program or an older
                threadline), or it is damaged; never silently replaced by a new one.
        """
        try:
            record = await self.database.get_record(STATE_KIND, thread_id)
        except (StoreError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise damaged(thread_id, f"unreadable: {exc}") from None
        if record is None:
            raise ThreadStateError(
                f"thread {thread_id!r} has no saved state (it was saved by another program or an "
                "older threadline), so its memory cannot be resumed; it was not resumed. Copy it "
                f"to a thread that can be: `threadline threads export {thread_id} | threadline "
                "threads import --new-id -`"
            )
        return check_layout(thread_id, record.body)

    async def _states(self) -> dict[str, dict[str, Any] | None]:
        """Every saved state by thread id (``None``: a state too damaged to use)."""
        out: dict[str, dict[str, Any] | None] = {}
        try:
            records = await self.database.list_records(STATE_KIND, limit=_ALL)
        except ValueError:  # a body that is not JSON: read them one by one, keeping the good ones
            for info in await self.database.list_threads():
                thread_id = str(info.thread_id)
                try:
                    record = await self.database.get_record(STATE_KIND, thread_id)
                except ValueError:
                    out[thread_id] = None
                    continue
                if record is not None:
                    out[thread_id] = record.body if isinstance(record.body, dict) else None
            return out
        for record in records:
            body = record.body
            out[record.id] = body if isinstance(body, dict) else None
        return out

    # -- listing and ids -------------------------------------------------------------------

    async def summaries(self) -> list[ThreadSummary]:
        """All saved threads and group chats, most recently updated first.

        A thread that cannot be read (corrupt rows, an invalid id written by another program) is
        listed with the reason in ``error``: one bad thread never hides the others. A group
        chat's participants' threads are not listed: the group is, by its transcript.
        """
        if not self.db.exists():  # don't create a database just to find it empty
            return []
        infos = await self.database.list_threads()
        states = await self._states()
        hidden = _participant_ids(states)
        out: list[ThreadSummary] = []
        for info in infos:
            if str(info.thread_id) not in hidden:
                out.append(await self._summary(info, states.get(str(info.thread_id))))
        return out

    async def _summary(self, info: ThreadInfo, state: dict[str, Any] | None) -> ThreadSummary:
        thread_id = str(info.thread_id)
        parent_id = None if info.parent_id is None else str(info.parent_id)
        # Any type can sit in a SQLite column: a bad value must not break the listing.
        raw_updated = cast(object, info.updated_at)
        updated_at = raw_updated if isinstance(raw_updated, int | float) else 0.0
        count = info.version if type(info.version) is int else 0
        participants: tuple[str, ...] = ()
        if state is not None and is_group_state(state):
            names = state.get("participants")
            participants = tuple(str(n) for n in cast(dict[str, Any], names or {}))
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
                participants=participants,
            )
        first = next((m.text for m in messages if m.role == Role.USER and m.text), "")
        return ThreadSummary(
            thread_id=thread_id,
            messages=len(messages),
            updated_at=updated_at,
            parent_id=parent_id,
            title=" ".join(first.split())[:60],
            participants=participants,
        )

    async def _ids(self) -> list[str]:
        """The ids a user can name: threads and group chats, not participants' threads."""
        if not self.db.exists():
            return []
        hidden = _participant_ids(await self._states())
        return [
            str(i.thread_id)
            for i in await self.database.list_threads()
            if str(i.thread_id) not in hidden
        ]

    async def exists(self, thread_id: str) -> bool:
        """True when a thread with this exact id is saved."""
        return thread_id in await self._ids()

    async def is_group(self, thread_id: str) -> bool:
        """True when the saved thread is a group chat."""
        state = (await self._states()).get(thread_id)
        return state is not None and is_group_state(state)

    async def resolve(self, id_or_prefix: str) -> str:
        """The full id of a saved thread, from its id or an unambiguous start of it.

        Raises:
            UsageError: the text cannot start an id, or no thread, or several, match (the
                message lists the candidates).
        """
        check_thread_id(id_or_prefix, field="thread id (or start of one)", error=UsageError)
        ids = await self._ids()
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
        shown = ", ".join(repr(m) for m in matches[:5])
        more = ", ..." if len(matches) > 5 else ""
        raise UsageError(
            f"{id_or_prefix!r} matches {len(matches)} threads ({shown}{more}); give more of the id"
        )

    # -- changes ---------------------------------------------------------------------------

    async def _state_or_none(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return await self.saved_state(thread_id)
        except ThreadStateError:
            return None

    async def fork(self, thread_id: str) -> str:
        """Branch a saved thread or group chat; returns the new id. No message is copied.

        A group chat's transcript and every participant's thread fork together with its state,
        in one transaction; a chat's state is copied with it (its memory starts anew: see
        ``_saved_state.moved``).
        """
        state = await self._state_or_none(thread_id)
        is_group = state is not None and is_group_state(state)
        child = ("group_" + os.urandom(12).hex()) if is_group else new_thread_id()
        batch = ThreadBatch().fork(thread_id, child)
        if state is not None and is_group:
            for name in state["participants"]:
                parent_pid = participant_thread_id(thread_id, name)
                batch.fork(parent_pid, participant_thread_id(child, name))
        body = moved(state, child, str(self.db)) if state else self._fresh(child)
        batch.put(ThreadRecord(kind=STATE_KIND, id=child, thread_id=child, body=body))
        await self.database.commit(batch)
        return child

    async def prune(self, older_than: timedelta, *, dry_run: bool = False) -> PruneResult:
        """Delete threads last updated before ``older_than`` ago (forks' parents are kept)."""
        database = self.database
        if not isinstance(database, PrunableDatabase):  # every shipped database is
            raise UsageError(f"{database!r} cannot delete old threads")
        return await database.delete_threads(older_than=older_than, dry_run=dry_run)

    async def delete(self, thread_id: str) -> None:
        """Delete a saved thread or group chat and its state; its forks keep their history."""
        states = await self._states()
        state = states.get(thread_id)
        batch = ThreadBatch().delete_thread(thread_id)
        if state is not None and is_group_state(state):
            for name in cast(dict[str, Any], state.get("participants") or {}):
                batch.delete_thread(participant_thread_id(thread_id, name))
        batch.delete_record(STATE_KIND, thread_id)
        await self.database.commit(batch)

    def _fresh(self, thread_id: str) -> dict[str, Any]:
        """The state of a thread nobody has talked on here: its messages and no memory."""
        return {
            "type": "threadline.thread",
            "schema_version": 2,
            "thread_id": thread_id,
            "user_id": None,
            "binding": {"service": None, "agent_id": None, "agent_name": None},
            "service_thread_id": None,
            "store": {"kind": "sqlite", "state": {"path": str(self.db), "thread_id": thread_id}},
            "context_providers": {},
        }

    async def import_thread(self, portable: PortableThread, *, new_id: bool = False) -> str:
        """Save a validated portable thread with a fresh state; returns its id here.

        The imported thread belongs to whoever continues it here (its memory starts then).

        Raises:
            UsageError: a thread with that id is already saved (nothing is written).
        """
        thread_id = new_thread_id() if new_id else portable.state.thread_id
        if await self.exists(thread_id):
            raise UsageError(
                f"thread {thread_id!r} is already saved in {str(self.db)!r}; nothing was imported. "
                "Delete it first, or import with --new-id to save a copy under a new id"
            )
        # expected_version=0: one transaction that fails if the thread appeared meanwhile.
        batch = ThreadBatch().append(thread_id, portable.messages, expected_version=0)
        record = ThreadRecord(
            kind=STATE_KIND, id=thread_id, thread_id=thread_id, body=self._fresh(thread_id)
        )
        await self.database.commit(batch.put(record))
        return thread_id


def _participant_ids(states: Mapping[str, Mapping[str, Any] | None]) -> set[str]:
    hidden: set[str] = set()
    for group_id, state in states.items():
        if state is not None and is_group_state(state):
            names = state.get("participants")
            if isinstance(names, dict):
                hidden.update(participant_thread_id(group_id, str(n)) for n in names)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return hidden


def summary_json(summary: ThreadSummary) -> dict[str, JSONValue]:
    """A summary's JSON form."""
    return {
        "thread_id": summary.thread_id,
        "kind": "group" if summary.participants else "chat",
        "participants": list(summary.participants),
        "messages": summary.messages,
        "updated_at": summary.updated_at,
        "parent_id": summary.parent_id,
        "title": summary.title,
        "error": summary.error,
    }
