"""``ConversationMemory``: past conversations of the same user, found again when they matter.

The ADR's conversation-summary component. Every user and assistant message is indexed as it is
stored, *with its context*: the two messages before it (each under its author's name, when it has
one) and the conversation's date go into the indexed text, and a short message's vector is
blended with the previous message's, because a turn alone is often "Yes, that was great!" and a
question about it names what came before, or when. Two, not one: in a conversation the words of a
question are often said two messages before its answer ("I volunteer at the shelter." / "How did
you start?" / "A year ago, after ..."); on real conversations (LoCoMo, development half) this
raised turn recall@10 from 0.665 to 0.748 with BM25 alone. When a
thread is checkpointed or ends, a summary of it is stored too (written by a chat client when one
is configured, extractive otherwise). Before each model call the most
relevant turns and summaries of the user's *other* threads are added as context, each with its date
and thread, so the model can answer "what did we decide last week?".

``ingest`` and ``recall`` are public so existing histories can be imported in bulk and searched
without an agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from threadline.memory import _traced as traced
from threadline.memory._background import ContextAs, check_context_as, memory_context
from threadline.memory._scoping import DEFAULT, ReadScope, Scoping, default_store, require_user
from threadline.memory._summary import extractive_summary, model_summary
from threadline.memory._text import clean, excerpt, format_date, search_query
from threadline.memory.context import Context
from threadline.memory.provider import ContextProvider
from threadline.memory.records import MemoryHit, MemoryRecord, MemoryScope, as_utc
from threadline.memory.store import Embedder, MemoryStore
from threadline.memory.tools import memory_tools
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.clients.base import ChatClient
    from threadline.threads.thread import AgentThread

__all__ = ["ConversationMemory"]

_PREVIOUS_CHARS = 400
"""How much of each previous message goes into a turn's indexed text: enough to name the topic,
short enough that a long answer does not drown the turn itself."""
_CONTEXT_MESSAGES = 2
"""How many previous messages of the thread are indexed with each message."""
_OWN_CHARS = 4000
_SHORT_CHARS = 80
"""A message shorter than this gets the previous message's vector blended into its own."""
_BATCH = 256
_BACKLOG = 50
"""How many messages a thread's state keeps while the store refuses them (the newest win)."""
_REMEMBERED_IDS = 500
_SHOWN_THREADS = 1_000
"""How many threads' shown records are remembered (an evicted thread may be shown one again)."""
_INTRO = (
    "Excerpts from this user's earlier conversations that may be relevant (most relevant "
    "first; each with its date and thread). Use them if they help; do not mention this list."
)


def _indexable(message: ChatMessage) -> bool:
    return message.role in (Role.USER, Role.ASSISTANT) and bool(message.text.strip())


class ConversationMemory(ContextProvider):
    """Indexes a user's conversations and brings back what is relevant from their other threads.

    Args:
        store: where turns and summaries live; the embedded default store when omitted.
        embedder: the embedder of the default store (ignored when ``store`` is given).
        summarizer: a chat client that writes thread summaries; extractive summaries without it.
        limit: how many past turns/summaries to add to each model call.
        agent_id: written on every memory (so reads may be narrowed to this agent).
        app_id: written on every memory and required on every read.
        read_scope: ``"user"`` (default) reads all the user's memories, ``"agent"`` only this
            agent's. Never another user's.
        context_as: add the past turns to the system ``"instructions"``; or send them as a
            background message before the newest input (``"messages"``), which keeps the prompt's
            start the same every turn, so a local model reuses what it evaluated, and sends each
            past turn once per thread; or recall once, at the thread's first call, and keep that
            in the instructions for the whole thread (``"pinned"``).
        tools: also offer the model ``remember``/``recall``/``forget`` on this store.
        recall_replies: also add the agent's past replies to calls (they stay indexed and
            searchable either way). ``False`` adds only what the user said and thread
            summaries: a past reply is no evidence about the user, and a small model repeats
            its own old mistakes word for word (issue 21).
        clock: the current time (tests pass a fixed one).
    """

    holds_user_data = True

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        embedder: Embedder | None | Any = DEFAULT,
        summarizer: ChatClient | None = None,
        limit: int = 5,
        agent_id: str | None = None,
        app_id: str | None = None,
        read_scope: ReadScope = "user",
        context_as: ContextAs = "instructions",
        tools: bool = False,
        recall_replies: bool = True,
        clock: Callable[[], datetime] | None = None,
        state_key: str | None = None,
    ) -> None:
        super().__init__(state_key=state_key)
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self._owns_store = store is None
        self.store: MemoryStore = store if store is not None else default_store(embedder)
        self.summarizer = summarizer
        self.limit = limit
        self.scoping = Scoping(agent_id=agent_id, app_id=app_id, read=read_scope)
        self.context_as: ContextAs = check_context_as(context_as)
        self.tools = tools
        self.recall_replies = recall_replies
        self._clock = clock or (lambda: datetime.now(UTC))
        # Indexing levers, switched off only by bench/memory.py to show what each one gives.
        self._context_messages = _CONTEXT_MESSAGES
        self._speaker_names = True
        self._shown: dict[str, set[str]] = {}
        self._pinned: dict[str, str] = {}
        """With ``context_as="pinned"``: each thread's recalled text, as its first call had it."""
        """With ``context_as="messages"``: the records each thread was already shown."""

    # -- public API -----------------------------------------------------------------------

    async def ingest(
        self,
        messages: Sequence[ChatMessage],
        *,
        user_id: str,
        thread_id: str,
        occurred_at: datetime | None = None,
    ) -> int:
        """Index a conversation (bulk import of an existing history); returns the turns added.

        Messages keep their ``message_id``; those of ``thread_id`` already indexed are skipped, so
        importing twice adds nothing. Two processes importing the same thread at once cannot
        double it either: a turn's record id is derived from its scope, thread and message
        (see ``_turn_record_id``), so the second write of a turn replaces the first.
        ``occurred_at`` is when the conversation happened (naive means UTC; now when omitted).
        """
        started = datetime.now(UTC)
        scope = self.scoping.write_scope(user_id)
        when = as_utc(occurred_at) if occurred_at is not None else self._clock()
        existing = await self.store.list(scope=scope, kinds=["turn"], thread_id=thread_id)
        done = {r.message_ids[-1] for r in existing if r.message_ids}
        records, _ = self._turn_records(
            messages,
            scope=scope,
            thread_id=thread_id,
            occurred_at=when,
            previous=[],
            seq=len(existing),
            skip=done,
        )
        # A forget of this user while the import runs refuses the rest (see derived_at).
        records = [replace(r, derived_at=started) for r in records]
        for start in range(0, len(records), _BATCH):
            await traced.add(self.store, records[start : start + _BATCH], operation="ingest")
        return len(records)

    async def recall(self, query: str, *, user_id: str, limit: int = 5) -> list[MemoryHit]:
        """The user's past turns and summaries most relevant to ``query``, best first."""
        return await traced.search(
            self.store,
            query,
            scope=self.scoping.read_scope(user_id),
            kinds=["turn", "summary"],
            limit=limit,
        )

    async def aclose(self) -> None:
        """Close the store if this component made it."""
        if self._owns_store:
            await self.store.aclose()

    # -- indexing -------------------------------------------------------------------------

    def _turn_records(
        self,
        messages: Sequence[ChatMessage],
        *,
        scope: MemoryScope,
        thread_id: str,
        occurred_at: datetime,
        previous: list[dict[str, str]],
        seq: int,
        skip: set[str],
    ) -> tuple[list[MemoryRecord], list[dict[str, str]]]:
        """One record per user/assistant message: date, previous messages and the message."""
        records: list[MemoryRecord] = []
        # Both spellings of the date: "May 2023" and "2023-05-20" questions both find it.
        date_line = f"Conversation of {occurred_at:%A, %d %B %Y} ({occurred_at:%Y-%m-%d})"
        previous = previous[-self._context_messages :] if self._context_messages else []
        for message in messages:
            if not _indexable(message):
                continue
            text = clean(message.text).strip()
            body = excerpt(text, _OWN_CHARS)
            speaker = self._speaker(message)
            if message.message_id not in skip:
                lines = [date_line, *(f"{p['who']}: {p['text']}" for p in previous)]
                ids = [p["id"] for p in previous]
                lines.append(f"{speaker}: {body}")
                ids.append(message.message_id)
                # The vector is the message's own, blended with the previous message's only when
                # the message is too short to say what it is about ("Yes, that was great!"). The
                # date line and names stay out of it: they only dilute a small model's vector,
                # and each token costs embedding time (measured in bench/memory.py).
                short = len(text) < _SHORT_CHARS
                records.append(
                    MemoryRecord(
                        id=_turn_record_id(scope, thread_id, message.message_id),
                        kind="turn",
                        text="\n".join(lines),
                        embedding_text=body,
                        embedding_context=previous[-1]["body"] if short and previous else None,
                        scope=scope,
                        thread_id=thread_id,
                        message_ids=tuple(ids),
                        occurred_at=occurred_at,
                        metadata={
                            "role": message.role.value,
                            "content": excerpt(text, _OWN_CHARS),
                            "seq": seq,
                            # Who spoke: a question naming them ranks their words first.
                            **({"author": clean(name)} if (name := message.author_name) else {}),
                        },
                    )
                )
                seq += 1
            if self._context_messages:
                previous = [
                    *previous,
                    {
                        "id": message.message_id,
                        "who": speaker,
                        "text": excerpt(text, _PREVIOUS_CHARS),
                        # Spelled as the message's own record spells it, so a store embeds the
                        # text once for both.
                        "body": body,
                    },
                ][-self._context_messages :]
        return records, previous

    def _speaker(self, message: ChatMessage) -> str:
        """Who said it, as indexed: the author's name when known (questions name people)."""
        if self._speaker_names and message.author_name:
            return clean(message.author_name)
        return message.role.value

    # -- ContextProvider hooks ------------------------------------------------------------

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        """Add the most relevant turns and summaries of the user's other threads."""
        user_id = require_user(thread, type(self).__name__)
        tools = memory_tools(self.store, self.scoping, user_id) if self.tools else ()
        pinned = self._pinned.get(thread.id) if self.context_as == "pinned" else None
        if pinned is not None:
            return (
                memory_context(pinned, context_as="pinned", tools=tools)
                if pinned
                else Context(tools=tools)
            )
        text = await self._recall_text(messages, thread=thread, user_id=user_id)
        if self.context_as == "pinned":
            self._pinned[thread.id] = text
            while len(self._pinned) > _SHOWN_THREADS:
                del self._pinned[next(iter(self._pinned))]
        if not text:
            return Context(tools=tools)
        return memory_context(text, context_as=self.context_as, tools=tools)

    async def _recall_text(
        self, messages: Sequence[ChatMessage], *, thread: AgentThread, user_id: str
    ) -> str:
        """The intro and the most relevant past turns for this call, or '' when none."""
        query = search_query([m.text for m in messages if m.role == Role.USER])
        if query is None or not self.limit:
            return ""
        found = await traced.search(
            self.store,
            query,
            scope=self.scoping.read_scope(user_id),
            kinds=["turn", "summary"],
            limit=self.limit * 2,
            exclude_thread_id=thread.id,
        )
        # A hit whose messages were all shown already (a summary of one shown turn, a turn inside
        # a shown window) would only repeat them: skip it and keep the next one.
        hits: list[MemoryHit] = []
        shown: set[str] = set()
        # As background messages, what earlier calls of this thread showed is not sent again:
        # the background is evaluated anew each turn, and the replies already made use of it.
        before: set[str] = set()
        if self.context_as == "messages":
            before = self._shown.setdefault(thread.id, before)
        for hit in found:
            if hit.id in before or (hit.message_ids and shown.issuperset(hit.message_ids)):
                continue
            if not self.recall_replies and hit.record.metadata.get("role") == Role.ASSISTANT.value:
                continue
            hits.append(hit)
            shown.update(hit.message_ids)
            if len(hits) == self.limit:
                break
        if not hits:
            return ""
        if self.context_as == "messages":
            before.update(hit.id for hit in hits)
            while len(self._shown) > _SHOWN_THREADS:
                del self._shown[next(iter(self._shown))]
        return "\n".join([_INTRO, *(_render(hit) for hit in hits)])

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        """Index the turn's input and what the agent answered (the input alone if it failed).

        The turn is already stored when this runs, so a store failure never fails it: the
        messages wait in the thread's state (``backlog``, at most the last 50) and the next turn
        indexes them first, with one warning per cause in the meantime.
        """
        user_id = require_user(thread, type(self).__name__)
        seen = datetime.now(UTC)  # the real time, for the stores' forget marks
        state = self.state(thread)
        indexed: list[str] = state.setdefault("indexed", [])
        done = set(indexed)
        waiting, seen_at = _messages_from_state(state.get("backlog"))
        new = [
            m
            for m in {
                m.message_id: m for m in [*waiting, *request_messages, *response_messages]
            }.values()
            if m.message_id not in done
        ]
        count = int(state.get("count", len(indexed)))
        records, last = self._turn_records(
            new,
            scope=self.scoping.write_scope(user_id),
            thread_id=thread.id,
            occurred_at=self._clock(),
            previous=_previous_from_state(state.get("last")),
            seq=count,
            skip=done,
        )
        if records:
            # A message is derived when it was first read, so a forget of the user since then
            # outranks a retry from the backlog too.
            records = [replace(r, derived_at=seen_at.get(r.message_ids[-1], seen)) for r in records]
            try:
                await traced.add(self.store, records, operation="ingest")
            except Exception as exc:  # learning never fails a turn that is already stored
                self._learning_failed(exc, f"the turns of user {user_id!r}")
                state["backlog"] = [
                    _message_to_state(m, seen_at.get(m.message_id, seen))
                    for m in new
                    if _indexable(m)
                ][-_BACKLOG:]
                return
            self._learning_worked()
            indexed.extend(r.message_ids[-1] for r in records)
            # The latest ids are enough to recognise a replayed turn; the state stays small.
            del indexed[:-_REMEMBERED_IDS]
            state["count"] = count + len(records)
            state["unsummarized"] = int(state.get("unsummarized", 0)) + len(records)
        state.pop("backlog", None)
        if last:
            # Without the full text of the last message: its excerpt is enough as context, and
            # the state is saved with the thread.
            state["last"] = [{k: v for k, v in p.items() if k != "body"} for p in last]

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        """Store (or refresh) the thread's summary when it has new turns."""
        await self._summarize(thread)

    async def thread_ended(self, thread: AgentThread) -> None:
        """Store the thread's final summary."""
        await self._summarize(thread)

    async def _summarize(self, thread: AgentThread) -> None:
        """Store the thread's summary; a store failure is logged and retried at the next call.

        Saving or ending a thread must not fail because its summary could not be written: the
        thread keeps counting its unsummarized turns, so the next checkpoint tries again.
        """
        state = self.state(thread)
        if not state.get("unsummarized") or not thread.user_id:
            return
        try:
            await self._write_summary(thread, state, thread.user_id)
        except Exception as exc:  # learning never fails saving or ending a thread
            self._learning_failed(exc, f"the summary of thread {thread.id!r}")
        else:
            self._learning_worked()

    async def _write_summary(self, thread: AgentThread, state: dict[str, Any], user: str) -> None:
        started = datetime.now(UTC)
        scope = self.scoping.write_scope(user)
        turns = await self.store.list(scope=scope, kinds=["turn"], thread_id=thread.id)
        turns.sort(key=lambda r: int(r.metadata.get("seq", 0)))
        if not turns:
            return
        text: str | None = None
        ids: list[str] = []
        if self.summarizer is not None:
            text = await model_summary(self.summarizer, turns)
            ids = [r.message_ids[-1] for r in turns]
        if text is None:
            text, ids = extractive_summary(turns)
        if not text:
            return
        first = turns[0].occurred_at or self._clock()
        summary = MemoryRecord(
            kind="summary",
            text=f"Summary of a conversation of {format_date(first)}: {text}",
            scope=scope,
            thread_id=thread.id,
            message_ids=tuple(ids),
            occurred_at=first,
            derived_at=started,
        )
        await traced.add(self.store, [summary], operation="summarize")
        old = state.get("summary_id")
        if old:
            await self.store.delete([old], scope=scope)
        state["summary_id"] = summary.id
        state["unsummarized"] = 0


def _turn_record_id(scope: MemoryScope, thread_id: str, message_id: str) -> str:
    """The id of the turn record of one message: the same in every process that indexes it.

    A hash of the write scope, the thread and the message, so concurrent imports (and an import
    of a thread the agent already indexed) replace a turn instead of storing it twice.
    """
    key = json.dumps([scope.user_id, scope.agent_id, scope.app_id, thread_id, message_id])
    return "mem_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _previous_from_state(saved: object) -> list[dict[str, str]]:
    """The previous messages kept in a thread's state (a list; one dict in older states)."""
    items: list[Any] = (
        list(saved) if isinstance(saved, list) else [saved] if isinstance(saved, dict) else []  # pyright: ignore[reportUnknownArgumentType]
    )
    out: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, dict) and "id" in item and "text" in item:
            entry = {str(k): str(v) for k, v in item.items()}  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            entry.setdefault("who", entry.get("role", "user"))
            entry.setdefault("body", entry["text"])
            out.append(entry)
    return out


def _message_to_state(message: ChatMessage, seen: datetime) -> dict[str, Any]:
    """A message waiting to be indexed, as kept in the thread's state (its indexed text only)."""
    saved: dict[str, Any] = {
        "seen": seen.timestamp(),
        "id": message.message_id,
        "role": message.role.value,
        "text": excerpt(message.text.strip(), _OWN_CHARS),
    }
    if message.author_name:
        saved["author"] = message.author_name
    return saved


def _messages_from_state(saved: object) -> tuple[list[ChatMessage], dict[str, datetime]]:
    """The messages a failed store left waiting in a thread's state, and when each was read.

    Malformed entries are skipped.
    """
    out: list[ChatMessage] = []
    seen: dict[str, datetime] = {}
    for item in saved if isinstance(saved, list) else []:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(item, dict):
            continue
        entry: dict[str, Any] = item  # pyright: ignore[reportUnknownVariableType]
        mid, role, text = entry.get("id"), entry.get("role"), entry.get("text")
        author = entry.get("author")
        if not (isinstance(mid, str) and mid and isinstance(text, str)):
            continue
        if role not in (Role.USER.value, Role.ASSISTANT.value):
            continue
        out.append(
            ChatMessage(
                role,
                text,
                message_id=mid,
                author_name=author if isinstance(author, str) else None,
            )
        )
        at = entry.get("seen")
        if isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at):
            with contextlib.suppress(OverflowError, OSError, ValueError):  # out of range: now
                seen[mid] = datetime.fromtimestamp(at, UTC)
    return out, seen


def _render(hit: MemoryHit) -> str:
    """One past turn for the model: its date, its thread, and the text (without the date line)."""
    when = format_date(hit.occurred_at) if hit.occurred_at else "date unknown"
    body = (
        hit.text.split("\n", 1)[1] if hit.record.kind == "turn" and "\n" in hit.text else hit.text
    )
    return f"- {when}, thread {hit.thread_id}:\n  " + excerpt(body, 700).replace("\n", "\n  ")
