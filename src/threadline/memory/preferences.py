"""``UserPreferencesMemory``: durable facts about the user, learnt in one chat, used in the next.

The ADR's user-preferences component. After each run a chat client (the *extractor*) is asked, in
the background, for durable facts in what the user said about themselves (never in the agent's
answers; see :mod:`._extraction` for the guards), as strict JSON with a subject key
per fact; the run itself never waits for it. A fact whose subject already has a different fact
supersedes it (the old one gets ``valid_to`` and is kept for audit); an identical fact is not
stored twice. Before each model call the user's current facts are added as instructions, after any
extraction still pending for that user has finished (bounded by a timeout), so what was said in
turn N is known in turn N+1, in this thread or any other of the same user.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from threadline import _tracing as tr
from threadline.memory import _traced as traced
from threadline.memory._background import ContextAs, check_context_as, memory_context
from threadline.memory._extraction import (
    ExtractedFact,
    extraction_options,
    grounded,
    parse_facts,
    request_facts,
    statements,
)
from threadline.memory._scoping import DEFAULT, ReadScope, Scoping, default_store, require_user
from threadline.memory._text import clean, excerpt, search_query
from threadline.memory.context import Context
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryRecord
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.tools import memory_tools
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.clients.base import ChatClient, ChatOptions
    from threadline.threads.thread import AgentThread

__all__ = ["ExtractedFact", "UserPreferencesMemory"]

logger = logging.getLogger("threadline.memory")

_KINDS: list[Any] = ["fact", "preference"]
_RETRIES = 20
"""How many failed extractions of one user are kept to retry with that user's next turn."""
_RETRY_USERS = 1_000
"""How many users' failed extractions are kept at most (a long outage must not grow memory)."""
_PINNED_THREADS = 1_000
"""How many threads' pinned facts are kept (an evicted thread reads its facts again)."""
_INTRO = "What you know about the person you are talking to:"
"""Says whom the facts are about, so a small model does not take them for its own (measured with
the background note of ``_background``, in ``bench/memory_use.py``)."""


class UserPreferencesMemory(ContextProvider):
    """Learns durable facts about each user and adds them to every model call of that user.

    Args:
        store: where facts live; the embedded default store when omitted.
        extractor: the chat client that extracts facts after each run; without one, facts come
            only from the ``remember`` tool.
        embedder: the embedder of the default store (ignored when ``store`` is given).
        limit: at most this many facts per call (the most relevant to the input when there are
            more).
        agent_id, app_id, read_scope: as in ``ConversationMemory``.
        tools: offer the model ``remember``/``recall``/``forget``.
        extraction_timeout: how long a call waits for the user's pending extraction (seconds).
        extraction_options: model settings of the extraction call; strict JSON by default.
        context_as: add the facts to the system ``"instructions"`` of every call, send them as a
            background message before the newest input (``"messages"``), or add those known at
            the thread's first call to its instructions and keep them unchanged for the thread
            (``"pinned"``: the prompt's start never moves, so a local model reuses it).
    """

    holds_user_data = True

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        extractor: ChatClient | None = None,
        embedder: Embedder | None | Any = DEFAULT,
        limit: int = 20,
        agent_id: str | None = None,
        app_id: str | None = None,
        read_scope: ReadScope = "user",
        tools: bool = True,
        extraction_timeout: float = 30.0,
        extraction_options: ChatOptions | None = None,
        context_as: ContextAs = "instructions",
        clock: Callable[[], datetime] | None = None,
        state_key: str | None = None,
    ) -> None:
        super().__init__(state_key=state_key)
        self.context_as: ContextAs = check_context_as(context_as)
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._owns_store = store is None
        self.store: MemoryStore = store if store is not None else default_store(embedder)
        self.extractor = extractor
        self.limit = limit
        self.scoping = Scoping(agent_id=agent_id, app_id=app_id, read=read_scope)
        self.tools = tools
        self.extraction_timeout = extraction_timeout
        self._options = extraction_options
        self._clock = clock or (lambda: datetime.now(UTC))
        # Per-user state lives only while that user has work: a server sees any number of users,
        # so an entry is dropped as soon as its user has nothing running.
        self._pending: dict[str, set[asyncio.Task[None]]] = {}
        self._locks: dict[str, _UserLock] = {}
        self._retry: dict[str, list[_Extraction]] = {}
        self._pinned: dict[str, str] = {}
        """With ``context_as="pinned"``: each thread's facts text, as its first call had it."""

    # -- public API -----------------------------------------------------------------------

    async def facts(self, *, user_id: str, query: str | None = None) -> list[MemoryRecord]:
        """The user's current facts (most relevant to ``query`` first when there are many)."""
        scope = self.scoping.read_scope(user_id)
        current = await self.store.list(scope=scope, kinds=_KINDS)
        if len(current) <= self.limit or not query:
            return current[: self.limit]
        hits = await traced.search(self.store, query, scope=scope, kinds=_KINDS, limit=self.limit)
        chosen = {h.id: h.record for h in hits}
        for record in current:  # fill with the newest
            if len(chosen) >= self.limit:
                break
            chosen.setdefault(record.id, record)
        return list(chosen.values())

    async def add_facts(
        self,
        facts: Sequence[ExtractedFact],
        *,
        user_id: str,
        thread_id: str | None = None,
        message_ids: Sequence[str] = (),
    ) -> list[MemoryRecord]:
        """Store facts: identical ones are skipped, one with a known subject supersedes the old.

        Returns the records added. The new fact is stored before the old one is superseded, so a
        crash in between leaves both rather than neither.
        """
        return await self._add_facts(
            facts, user_id=user_id, thread_id=thread_id, message_ids=message_ids, derived_at=None
        )

    async def _add_facts(
        self,
        facts: Sequence[ExtractedFact],
        *,
        user_id: str,
        thread_id: str | None,
        message_ids: Sequence[str],
        derived_at: datetime | None,
    ) -> list[MemoryRecord]:
        """``add_facts``; ``derived_at`` is when the turn they were extracted from was read."""
        scope = self.scoping.write_scope(user_id)
        added: list[MemoryRecord] = []
        async with self._user_lock(user_id):
            existing = await self.store.list(scope=scope, kinds=_KINDS)
            for fact in facts:
                text = clean(fact.fact)
                if any(r.text.casefold() == text.casefold() for r in existing):
                    continue
                now = self._clock()
                record = MemoryRecord(
                    kind=fact.kind,
                    text=text,
                    scope=scope,
                    thread_id=thread_id,
                    message_ids=tuple(message_ids),
                    occurred_at=now,
                    valid_from=now,
                    metadata={"subject": clean(fact.subject)},
                    derived_at=derived_at,
                )
                await traced.add(self.store, [record], operation="remember preference")
                older = [
                    r for r in existing if r.metadata.get("subject") == record.metadata["subject"]
                ]
                for old in older:
                    await self.store.supersede(old.id, scope=scope, valid_to=now)
                existing = [r for r in existing if r not in older] + [record]
                added.append(record)
        return added

    @contextlib.asynccontextmanager
    async def _user_lock(self, user_id: str) -> AsyncGenerator[None]:
        """Serialise one user's fact writes; the lock goes once nobody holds or awaits it."""
        entry = self._locks.get(user_id)
        if entry is None:
            entry = self._locks[user_id] = _UserLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[user_id]

    def _finished(self, user_id: str, task: asyncio.Task[None]) -> None:
        """A background extraction ended: drop it, and its user's entry once nothing is left."""
        group = self._pending.get(user_id)
        if group is not None:
            group.discard(task)
            if not group:
                del self._pending[user_id]

    async def wait_pending(self, user_id: str | None = None) -> None:
        """Wait for background extractions (of one user, or all) to finish."""
        tasks = [
            t
            for uid, group in self._pending.items()
            if user_id is None or uid == user_id
            for t in group
        ]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, seconds: float | None = None) -> int:
        """Wait up to ``seconds`` for every user's background extractions to finish.

        What is still running then is cancelled, so a process shutting down never loses
        learning silently: returns how many extractions were cancelled (0 when all finished).
        ``None`` waits as long as they take.
        """
        tasks = [t for group in self._pending.values() for t in group]
        if not tasks:
            return 0
        _, late = await asyncio.wait(tasks, timeout=seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
        return len(late)

    async def aclose(self) -> None:
        """Finish pending extractions; close the store if this component made it."""
        await self.wait_pending()
        if self._owns_store:
            await self.store.aclose()

    # -- ContextProvider hooks ------------------------------------------------------------

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        """Add the user's facts as instructions, once that user's pending extraction is done.

        With ``context_as="pinned"``, the facts of the thread's first call are reused verbatim
        for its later calls (no wait, no read): the prompt's start never changes.
        """
        user_id = require_user(thread, type(self).__name__)
        tools = memory_tools(self.store, self.scoping, user_id) if self.tools else ()
        pinned = self._pinned.get(thread.id) if self.context_as == "pinned" else None
        if pinned is not None:
            if not pinned:
                return Context(tools=tools)
            return memory_context(pinned, context_as=self.context_as, tools=tools)
        pending = list(self._pending.get(user_id, ()))
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.extraction_timeout)
            if late:
                logger.warning(
                    "fact extraction for user %r still running after %.0fs; answering without it",
                    user_id,
                    self.extraction_timeout,
                )
        query = search_query([m.text for m in messages if m.role == Role.USER])
        facts = await self.facts(user_id=user_id, query=query)
        text = "\n".join([_INTRO, *(f"- {excerpt(r.text, 300)}" for r in facts)]) if facts else ""
        if self.context_as == "pinned":
            self._pinned[thread.id] = text
            while len(self._pinned) > _PINNED_THREADS:
                del self._pinned[next(iter(self._pinned))]
        if not text:
            return Context(tools=tools)
        return memory_context(text, context_as=self.context_as, tools=tools)

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        """Start extracting facts from the user's new messages in the background."""
        user_id = require_user(thread, type(self).__name__)
        said = [m for m in request_messages if m.role == Role.USER and m.text.strip()]
        if self.extractor is None or exception is not None or not said:
            return
        state = self.state(thread)
        done: list[str] = state.setdefault("extracted", [])
        said = [m for m in said if m.message_id not in done]
        if not said:
            return
        done.extend(m.message_id for m in said)
        del done[:-200]  # enough to recognise a replayed turn; the state stays small
        seen = datetime.now(UTC)  # the real time, for the stores' forget marks
        work = self._retry.pop(user_id, [])
        if statements(said):  # questions and requests hold no facts: no model call for them
            work.append(_Extraction(thread.id, said, seen))
        group = self._pending.setdefault(user_id, set())
        for extraction in work:
            task = asyncio.create_task(self._extract(user_id, extraction))
            group.add(task)
            task.add_done_callback(functools.partial(self._finished, user_id))

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        """Finish the user's pending extractions, so a saved thread has nothing in flight."""
        await self.wait_pending(thread.user_id)

    async def thread_ended(self, thread: AgentThread) -> None:
        """Finish the user's pending extractions."""
        await self.wait_pending(thread.user_id)

    async def _extract(self, user_id: str, work: _Extraction) -> None:
        span = tr.start_span("extract preferences")
        if span is not None:
            span.set_attribute(tr.USER_ID, user_id)
            span.set_attribute(tr.THREAD_ID, work.thread_id)
            span.set_attribute(tr.MESSAGE_COUNT, len(work.said))
        with tr.activated(span):
            ok = await self._extract_traced(user_id, work)
        if span is not None:
            if not ok:
                span.set_status(tr.Status(tr.StatusCode.ERROR, "fact extraction failed"))
            span.end()

    async def _extract_traced(self, user_id: str, work: _Extraction) -> bool:
        """Extract and store facts; False when it failed (and will be retried)."""
        assert self.extractor is not None
        try:
            known = await self.store.list(scope=self.scoping.write_scope(user_id), kinds=_KINDS)
            options = self._options or extraction_options()
            # The user's words only: the assistant's replies are never a source of facts.
            answer = await request_facts(self.extractor, work.said, known, options)
            facts = parse_facts(answer)
            if facts is None:
                logger.warning(
                    "fact extractor answered %r, not the JSON asked for; nothing stored",
                    excerpt(answer, 200),
                )
                return False
            said = statements(work.said)
            facts = [f for f in facts if grounded(f.fact, said)]
            await self._add_facts(
                facts,
                user_id=user_id,
                thread_id=work.thread_id,
                message_ids=[m.message_id for m in work.said],
                derived_at=work.seen,  # a forget since then outranks this extraction
            )
        except Exception as exc:  # a failed extraction must never fail or block the chat
            self._learning_failed(exc, f"facts of user {user_id!r}")
            retry = self._retry.setdefault(user_id, [])
            retry.append(work)
            del retry[:-_RETRIES]
            while len(self._retry) > _RETRY_USERS:  # users who never come back: oldest go first
                del self._retry[next(iter(self._retry))]
            return False
        self._learning_worked()
        return True


@dataclass(slots=True)
class _UserLock:
    """One user's write lock and how many callers hold or await it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(frozen=True, slots=True)
class _Extraction:
    """One turn to extract facts from: the user's new messages (never the agent's answer)."""

    thread_id: str
    said: Sequence[ChatMessage]
    seen: datetime
    """When the turn was read: facts from it are refused if the user is forgotten after."""
