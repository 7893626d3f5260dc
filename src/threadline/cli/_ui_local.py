"""The local home as a ``UiSource``: the ``threadline`` command's threads, group chats, memories.

``threadline ui`` serves one person's own files on loopback, so there is one account, ``local``,
and no key. Threads are the library's (``threads.db``), group chats the saved transcripts under
``groups/`` (shown, not forked: a group chat resumes from its file), memories those of
``memory.sqlite3``, opened on first use. The chat box runs the agent it is given (``threadline
ui --chat``: the embedded model) on a saved thread, streaming the reply.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from threadline.agents.chat_agent import ChatAgent
from threadline.cli._library import ThreadLibrary
from threadline.cli.memory_cmd import open_store
from threadline.exceptions import MessageFormatError
from threadline.memory import MemoryRecord, MemoryScope, MemoryStore
from threadline.types.messages import ChatMessage, Role
from threadline.ui import MemoryEntry, ThreadEntry, ThreadView, ui_routes

__all__ = ["ACCOUNT", "LocalUiSource", "local_app"]

ACCOUNT = "local"
"""The one account of a home."""
_TITLE = 80


def _title(messages: Sequence[ChatMessage]) -> str:
    first = next((m.text for m in messages if m.role == Role.USER and m.text), "")
    line = " ".join(first.split())
    return line if len(line) <= _TITLE else line[: _TITLE - 1] + "…"


def _memory(record: MemoryRecord, score: float | None = None) -> MemoryEntry:
    return MemoryEntry(
        memory_id=record.id,
        kind=record.kind,
        text=record.text,
        thread_id=record.thread_id,
        recorded_at=record.recorded_at.astimezone(UTC).isoformat(),
        score=score,
    )


def _group(path: Path) -> tuple[list[ChatMessage], list[str]] | None:
    """A saved group chat's transcript and the manager's choices, or ``None`` if unreadable."""
    try:
        state = cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))
        raw = state["transcript"]["state"]["messages"]
        messages = [ChatMessage.from_dict(m) for m in cast(list[object], raw)]
    except (OSError, ValueError, KeyError, TypeError, MessageFormatError):
        return None
    speakers: list[str] = []
    for message in messages:
        name = message.author_name
        if message.role != Role.USER and name and (not speakers or speakers[-1] != name):
            speakers.append(name)
    notes = [f"The manager chose, in order: {' → '.join(speakers) or 'nobody yet'}."]
    rounds, upcoming = state.get("rounds_used"), state.get("next_speaker")
    if isinstance(rounds, int):
        notes.append(f"Rounds used: {rounds}.")
    if isinstance(upcoming, str):
        notes.append(f"Next speaker: {upcoming}.")
    return messages, notes


class LocalUiSource:
    """The threads, group chats and memories of one home directory."""

    def __init__(self, home: Path, *, agent: ChatAgent | None = None) -> None:
        self.home = home
        self.agent = agent
        """The agent the chat box runs on a thread; ``None``: the pages have no chat box."""
        self.library = ThreadLibrary(home)
        self._memory: MemoryStore | None = None

    @property
    def chat_via(self) -> Literal["responses", "source"] | None:
        """The chat box runs ``agent`` on the thread here, when there is one."""
        return "source" if self.agent is not None else None

    async def chat(self, account: str, thread_id: str, text: str) -> AsyncIterator[str] | None:
        """A turn of ``agent`` on a saved thread, as ``threadline chat --thread ID`` makes it."""
        if self.agent is None or not await self.library.exists(thread_id):
            return None
        agent, thread = self.agent, self.library.thread(thread_id)

        async def reply() -> AsyncIterator[str]:
            async for update in agent.run_stream(text, thread=thread):
                if update.text:
                    yield update.text

        return reply()

    def _store(self) -> MemoryStore:
        if self._memory is None:
            self._memory = open_store(self.home)
        return self._memory

    async def aclose(self) -> None:
        """Close the memory store if it was opened."""
        if self._memory is not None:
            await self._memory.aclose()

    def _groups(self) -> dict[str, Path]:
        folder = self.home / "groups"
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.glob("*.json"))}

    async def _all(self) -> list[tuple[ThreadEntry, list[ChatMessage], list[str]]]:
        out: list[tuple[ThreadEntry, list[ChatMessage], list[str]]] = []
        for summary in await self.library.summaries():
            if summary.error is not None:
                continue
            messages = await self.library.messages(summary.thread_id)
            entry = ThreadEntry(
                thread_id=summary.thread_id,
                title=_title(messages),
                messages=len(messages),
                updated_at=summary.updated_at,
                parent_id=summary.parent_id,
            )
            out.append((entry, messages, []))
        for group_id, path in self._groups().items():
            group = _group(path)
            if group is None:
                continue
            messages, notes = group
            entry = ThreadEntry(
                thread_id=group_id,
                title=_title(messages),
                messages=len(messages),
                updated_at=path.stat().st_mtime,
                kind="group",
            )
            out.append((entry, messages, notes))
        return out

    async def threads(self, account: str, *, query: str = "") -> list[ThreadEntry]:
        """Saved threads and group chats holding ``query``, newest first."""
        needle = query.casefold()
        found = [
            entry
            for entry, messages, _ in await self._all()
            if not needle or any(needle in m.text.casefold() for m in messages)
        ]
        return sorted(found, key=lambda e: e.updated_at, reverse=True)

    async def thread(
        self, account: str, thread_id: str, *, offset: int, limit: int
    ) -> ThreadView | None:
        """One page of a thread or group chat, with the threads forked from it."""
        everything = await self._all()
        match = next((found for found in everything if found[0].thread_id == thread_id), None)
        if match is None:
            return None
        entry, messages, notes = match
        children = [e for e, _, _ in everything if e.parent_id == thread_id]
        return ThreadView(
            entry=entry,
            messages=messages[offset : offset + limit],
            offset=offset,
            children=children,
            notes=notes,
        )

    async def fork(self, account: str, thread_id: str, *, at: int) -> ThreadEntry | None:
        """Branch a saved thread at a message (group chats are not forked here)."""
        if not await self.library.exists(thread_id):
            return None
        messages = await self.library.messages(thread_id)
        at = min(at, len(messages))
        child = await self.library.database.store(thread_id).fork(at=at)
        child_id = str(getattr(child, "thread_id"))  # noqa: B009 - every database store has one
        return ThreadEntry(
            thread_id=child_id,
            title=_title(messages[:at]),
            messages=at,
            updated_at=0.0,
            parent_id=thread_id,
        )

    async def memories(self, account: str, user: str, *, query: str = "") -> list[MemoryEntry]:
        """The user's memories, or the hits of ``query`` with their scores."""
        scope = MemoryScope(user_id=user)
        if query:
            hits = await self._store().search(query, scope=scope, limit=50)
            return [_memory(h.record, h.score) for h in hits]
        return [_memory(r) for r in await self._store().list(scope=scope, limit=500)]

    async def forget_memory(self, account: str, user: str, memory_id: str) -> bool:
        """Delete one of the user's records."""
        return await self._store().delete([memory_id], scope=MemoryScope(user_id=user)) > 0

    async def forget_user(self, account: str, user: str) -> int:
        """Delete everything remembered about the user."""
        return (await self._store().forget(user_id=user)).records


async def _local(request: Request) -> str | None:
    return ACCOUNT


def local_app(home: Path, *, agent: ChatAgent | None = None) -> Starlette:
    """The UI over ``home``, at ``/ui/`` (``/`` redirects there); ``agent`` answers its chat box."""
    source = LocalUiSource(home, agent=agent)

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await source.aclose()

    return Starlette(routes=[Route("/", root), ui_routes(source, _local)], lifespan=lifespan)
