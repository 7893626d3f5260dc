"""The server's conversations and memories as a ``UiSource``, so ``/ui/`` shows them.

A key sees what its account sees through the API: the conversations recorded under its account
and the memories of its account's users (``memory_user_id``); anything else is ``None``, a 404.
The pages chat through ``POST /v1/responses`` itself, so a turn made from the UI is the same turn
an SDK client makes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Literal, cast

from starlette.requests import Request

from threadline.exceptions import UsageError
from threadline.hosting._request import ServerState, state_of
from threadline.hosting._runner import memory_user_id
from threadline.hosting._turns import new_id
from threadline.hosting.errors import ApiError
from threadline.hosting.users import forget_everything, memory_stores
from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.threads.stores.database import ThreadInfo
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.messages import ChatMessage, Role
from threadline.ui import MemoryEntry, ThreadEntry, ThreadView

__all__ = ["ServerUiSource", "authenticate"]

_ALL = 2**62
_TITLE = 80


async def authenticate(request: Request) -> str | None:
    """The account of the request's bearer key, as every API route finds it."""
    try:
        return state_of(request)[1]
    except ApiError:
        return None


def _title(messages: list[ChatMessage]) -> str:
    first = next((m.text for m in messages if m.role == Role.USER and m.text), "")
    line = " ".join(first.split())
    return line if len(line) <= _TITLE else line[: _TITLE - 1] + "…"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _memory(record: MemoryRecord, score: float | None = None) -> MemoryEntry:
    return MemoryEntry(
        memory_id=record.id,
        kind=record.kind,
        text=record.text,
        thread_id=record.thread_id,
        recorded_at=record.recorded_at.astimezone(UTC).isoformat(),
        score=score,
    )


class ServerUiSource:
    """An account's conversations (threads of the server's database) and its users' memories."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    @property
    def chat_via(self) -> Literal["responses", "source"] | None:
        """The pages chat through the server's Responses API, like any client."""
        return "responses"

    async def chat(self, account: str, thread_id: str, text: str) -> AsyncIterator[str] | None:
        """Not used: a turn from the UI is a ``POST /v1/responses`` (see :attr:`chat_via`)."""
        raise UsageError("the server's UI chats through POST /v1/responses")

    async def _conversations(self, account: str) -> dict[str, ThreadRecord]:
        records = await self.state.database.list_records("conversation", owner=account, limit=_ALL)
        return {r.thread_id or r.id: r for r in records if r.body is not None}

    async def _entry(
        self, thread_id: str, info: ThreadInfo | None, messages: list[ChatMessage]
    ) -> ThreadEntry:
        return ThreadEntry(
            thread_id=thread_id,
            title=_title(messages),
            messages=len(messages),
            updated_at=info.updated_at if info else 0.0,
            parent_id=info.parent_id if info else None,
        )

    async def _infos(self) -> dict[str, ThreadInfo]:
        return {i.thread_id: i for i in await self.state.database.list_threads()}

    async def threads(self, account: str, *, query: str = "") -> list[ThreadEntry]:
        """The account's conversations whose messages contain ``query``, newest first."""
        owned = await self._conversations(account)
        infos = await self._infos()
        needle = query.casefold()
        out: list[ThreadEntry] = []
        for thread_id in owned:
            messages = list(await self.state.database.store(thread_id).list_messages())
            if needle and not any(needle in m.text.casefold() for m in messages):
                continue
            out.append(await self._entry(thread_id, infos.get(thread_id), messages))
        return sorted(out, key=lambda e: e.updated_at, reverse=True)

    async def thread(
        self, account: str, thread_id: str, *, offset: int, limit: int
    ) -> ThreadView | None:
        """One page of a conversation of the account, with the conversations forked from it."""
        owned = await self._conversations(account)
        if thread_id not in owned:
            return None
        infos = await self._infos()
        messages = list(await self.state.database.store(thread_id).list_messages())
        children: list[ThreadEntry] = []
        for child_id, info in infos.items():
            if info.parent_id == thread_id and child_id in owned:
                child = list(await self.state.database.store(child_id).list_messages())
                children.append(await self._entry(child_id, info, child))
        return ThreadView(
            entry=await self._entry(thread_id, infos.get(thread_id), messages),
            messages=messages[offset : offset + limit],
            offset=offset,
            children=children,
            usage=await self._usage(account, thread_id),
        )

    async def _usage(self, account: str, thread_id: str) -> tuple[int, int]:
        """Tokens of the responses made on the thread (their objects hold the usage)."""
        spent_in = spent_out = 0
        for record in await self.state.database.list_records("response", owner=account, limit=_ALL):
            usage = (record.body or {}).get("usage") if record.thread_id == thread_id else None
            if isinstance(usage, dict):
                tokens = cast(dict[str, object], usage)
                spent_in += _count(tokens.get("input_tokens"))
                spent_out += _count(tokens.get("output_tokens"))
        return spent_in, spent_out

    async def fork(self, account: str, thread_id: str, *, at: int) -> ThreadEntry | None:
        """A new conversation of the account holding the first ``at`` messages (copy-on-write)."""
        owned = await self._conversations(account)
        if thread_id not in owned:
            return None
        messages = list(await self.state.database.store(thread_id).list_messages())
        at = min(at, len(messages))
        conversation_id = new_id("conv")
        now = time.time()
        body = {
            "id": conversation_id,
            "object": "conversation",
            "created_at": int(now),
            "metadata": {"forked_from": thread_id, "forked_at": str(at)},
        }
        record = ThreadRecord(
            kind="conversation",
            id=conversation_id,
            owner=account,
            thread_id=conversation_id,
            body=body,
            created_at=now,
        )
        await self.state.database.commit(
            ThreadBatch().fork(thread_id, conversation_id, at=at).put(record)
        )
        return ThreadEntry(
            thread_id=conversation_id,
            title=_title(messages[:at]),
            messages=at,
            updated_at=now,
            parent_id=thread_id,
        )

    def _scope(self, account: str, user: str) -> MemoryScope:
        return MemoryScope(user_id=memory_user_id(account, user))

    async def memories(self, account: str, user: str, *, query: str = "") -> list[MemoryEntry]:
        """The memories of one user of the account, or the hits of ``query``, best first."""
        scope = self._scope(account, user)
        out: list[MemoryEntry] = []
        for store in memory_stores(self.state.agent):
            if query:
                hits = await store.search(query, scope=scope, limit=50)
                out.extend(_memory(h.record, h.score) for h in hits)
            else:
                out.extend(_memory(r) for r in await store.list(scope=scope, limit=500))
        if query:
            out.sort(key=lambda m: m.score or 0.0, reverse=True)
        return out

    async def forget_memory(self, account: str, user: str, memory_id: str) -> bool:
        """Delete one record of the user's; False when none of the stores holds it for them."""
        scope = self._scope(account, user)
        deleted = 0
        for store in memory_stores(self.state.agent):
            deleted += await store.delete([memory_id], scope=scope)
        return deleted > 0

    async def forget_user(self, account: str, user: str) -> int:
        """What ``POST /v1/users/forget`` does: memories, responses, conversations, answers."""
        forgotten = await forget_everything(self.state, account, user)
        return int(forgotten["memory"]["records"])
