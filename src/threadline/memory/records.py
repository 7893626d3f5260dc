"""Long-term memory values: what a ``MemoryStore`` keeps, whose it is, and what a search returns.

Memories outlive threads, so every record names its owner (``MemoryScope``: user, and optionally
agent and app) and where it came from (thread and message ids). Time is kept twice: when the
remembered thing happened (``occurred_at``, what "last week" questions are about) and when it was
recorded; validity (``valid_from``/``valid_to``) lets a newer fact supersede an older one without
deleting it, so the history of what was believed stays auditable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from threadline.exceptions import UsageError

__all__ = [
    "MAX_ID_BYTES",
    "ForgetResult",
    "MemoryHit",
    "MemoryKind",
    "MemoryPruneResult",
    "MemoryRecord",
    "MemoryScope",
    "as_utc",
    "check_identifier",
    "new_memory_id",
]

MemoryKind = Literal["fact", "preference", "turn", "summary"]
"""``fact``/``preference``: durable statements about the user; ``turn``: an indexed piece of a
conversation (with its surrounding context); ``summary``: a summary of a whole thread."""


MAX_ID_BYTES = 1024
"""The longest identifier (memory, user, agent, app and thread ids) in UTF-8 bytes. PostgreSQL
cannot index a key over about 2,700 bytes, and its memory table indexes a user and a thread id
together; one limit for every store keeps them answering alike."""


def check_identifier(value: object, what: str) -> str:
    """``value`` if it can identify a memory, a user, an agent, an app or a thread.

    Every store gives the same answer: a ``UsageError`` for an empty, non-string, over-long
    (``MAX_ID_BYTES``) or NUL-holding id, or one that is not valid Unicode.
    """
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise UsageError(
            f"{what} {value[:40]!r}... contains U+0000 (NUL), which no store can keep; "
            "use an id without it"
        )
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError(
            f"{what} {value[:40]!r}... is not valid Unicode (a lone surrogate)"
        ) from None
    if size > MAX_ID_BYTES:
        raise UsageError(
            f"{what} has {size:,} bytes in UTF-8, over the limit of {MAX_ID_BYTES:,}; "
            "use a shorter id (a hash of a long one, for example)"
        )
    return value


def new_memory_id() -> str:
    """A fresh random memory id."""
    return "mem_" + os.urandom(12).hex()


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryScope:
    """Whose memories a read or write touches. A user is always required: never "all users".

    ``agent_id``/``app_id`` narrow a scope; ``None`` there means "any agent/app of this user" on
    reads and "not tied to one" on writes.
    """

    user_id: str
    agent_id: str | None = None
    app_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(
                f"a memory scope needs a non-empty user_id, got {self.user_id!r}: memories are "
                "private to their user; give the thread one with agent.get_new_thread(user_id=...)"
            )
        check_identifier(self.user_id, "memory scope user_id")
        for name in ("agent_id", "app_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise UsageError(f"memory scope {name} must be a non-empty string or None")
            if value is not None:
                check_identifier(value, f"memory scope {name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRecord:
    """One remembered thing."""

    kind: MemoryKind
    text: str
    scope: MemoryScope
    id: str = field(default_factory=new_memory_id)
    thread_id: str | None = None
    """The thread it was learned from, if any."""
    message_ids: tuple[str, ...] = ()
    """The source messages, in order (for a turn: the messages its text was built from)."""
    occurred_at: datetime | None = None
    """When the remembered thing happened (aware UTC); ``None`` when unknown."""
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When it was stored."""
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    """Set when a newer memory superseded this one; such records are kept for audit only."""
    expires_at: datetime | None = None
    """When the record stops being true or wanted (a temporary preference, a turn kept for a
    week); from then on no store recalls, lists or returns it, and ``prune`` deletes it.
    ``None``: kept until deleted, superseded or forgotten."""
    embedding_text: str | None = None
    """What a store with an embedder embeds instead of ``text``, when set. Indexed text may carry
    context (the date, the previous turn) that helps full-text search but dilutes a small embedding
    model's vector and costs it time in proportion to its length; not stored."""
    embedding_context: str | None = None
    """Text that says what a short record is about (the turn before "Yes, that was great!"). Its
    vector is blended into the record's with a lower weight rather than embedded together with
    it: the messages of a conversation are each other's context, so a
    store embeds every distinct text of a batch once and the context costs nothing more; not
    stored."""
    metadata: Mapping[str, Any] = field(default_factory=lambda: {})
    """JSON-able extras (e.g. a fact's subject key used to detect contradictions)."""
    derived_at: datetime | None = None
    """When the source this record was learnt from was read (the turn a fact was extracted
    from, the messages a turn record indexes). A store refuses (drops) a record derived before
    its user was last forgotten, so work still running when ``forget(user_id)`` was called (a
    background extraction, an import) cannot bring the forgotten back. ``None`` for a direct
    write (``remember``), which is always accepted; not stored."""

    @property
    def is_valid(self) -> bool:
        """False once superseded."""
        return self.valid_to is None

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once ``expires_at`` has passed (at ``now``, default the present)."""
        if self.expires_at is None:
            return False
        return as_utc(self.expires_at) <= (datetime.now(UTC) if now is None else as_utc(now))


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPruneResult:
    """What a memory store's ``prune`` deleted, or with ``dry_run`` what it would delete."""

    expired: int
    """Records whose ``expires_at`` had passed."""
    superseded: int
    """Records superseded (``valid_to``) before the cutoff, kept until then for audit."""
    cutoff: datetime
    """Records superseded before this moment were old enough to go."""
    dry_run: bool = False
    """True when nothing was deleted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgetResult:
    """What ``MemoryStore.forget(user_id=...)`` did, told truthfully.

    Deleting rows makes them unreachable by any query at once; whether the user's words have
    also left the store's files depends on the store. ``purged`` says which, and ``remaining``
    says where the words still are and what an operator must run to remove them.
    """

    records: int
    """How many records of the user were deleted."""
    purged: bool
    """True when the store's files no longer hold the user's words (SQLite after a completed
    checkpoint); False when some copy remains on disk until an operator acts."""
    remaining: str = ""
    """When not purged: where the words still are, and what removes them."""

    def __str__(self) -> str:
        plural = "y" if self.records == 1 else "ies"
        text = f"forgot {self.records} memor{plural}"
        return text if self.purged else f"{text}; {self.remaining}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHit:
    """A search result: the record and how well it matched (higher is better)."""

    record: MemoryRecord
    score: float

    @property
    def id(self) -> str:
        """The record's id (what ``forget(memory_id)`` takes)."""
        return self.record.id

    @property
    def text(self) -> str:
        """The remembered text."""
        return self.record.text

    @property
    def thread_id(self) -> str | None:
        """The thread it came from."""
        return self.record.thread_id

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The source messages it came from, in order."""
        return self.record.message_ids

    @property
    def occurred_at(self) -> datetime | None:
        """When it happened."""
        return self.record.occurred_at
