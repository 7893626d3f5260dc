"""``MultiAgentThread``: the whole state of one multi-agent conversation, serializable as one dict.

It holds every participant's own ``AgentThread`` (each a complete record of what that agent saw),
the shared transcript (a ``ChatMessageStore``, so it can live in memory, SQLite, Redis or
PostgreSQL), and where the conversation stands: rounds used, the last speaker, the next speaker
once chosen, the runner's own state (a group chat manager's, a handoff's bookkeeping). Group
chats and processes (sequential, handoff) use the same class; ``kind`` says which runner it
belongs to.

Old names, kept as aliases so code and saved state from before the rename still work:
``GroupChatThread`` is this class, ``manager_state`` is ``runner_state``, and a state of schema
version 1 (which saved ``manager_state``) is migrated on restore.

Consistency: the transcript is the commit point. A runner checks the transcript's version before
a turn and appends with the version it read, so two processes that restored the same state cannot
both continue it: the second gets ``ConcurrentThreadUpdateError`` before anything is stored in the
transcript (see the runners for what a participant's own thread holds then).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from threadline.exceptions import ThreadStateError
from threadline.threads.state import THREAD_ID_MAX_LENGTH, check_thread_id
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.thread import AgentThread
from threadline.types.messages import ChatMessage

__all__ = [
    "GROUP_SCHEMA_VERSION",
    "GROUP_STATE_TYPE",
    "GroupChatThread",
    "MultiAgentThread",
    "MultiAgentThreadState",
    "check_participant_ids",
    "new_conversation_id",
    "participant_thread_id",
]

GROUP_STATE_TYPE = "threadline.group_thread"
"""The ``type`` of a serialized multi-agent thread (the old name stays: saved states carry it)."""
GROUP_SCHEMA_VERSION = 2
"""Version 2 renamed ``manager_state`` to ``runner_state``; version 1 states are migrated."""
RunnerKind = Literal["group_chat", "sequential", "handoff"]


class _StoreState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1)
    state: dict[str, Any]


class MultiAgentThreadState(BaseModel):
    """The validated serialized form of a :class:`MultiAgentThread` (where JSON comes in)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["threadline.group_thread"]
    schema_version: Literal[2]
    kind: RunnerKind
    thread_id: str = Field(min_length=1)
    user_id: str | None = None
    participants: dict[str, dict[str, Any]]
    transcript: _StoreState
    version: int = Field(ge=0)
    rounds_used: int = Field(ge=0)
    last_speaker: str | None = None
    next_speaker: str | None = None
    awaiting: str | None = None
    runner_state: dict[str, Any]

    @field_validator("thread_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        # It names files and keys (the CLI's library); the thread-id rule keeps it harmless.
        return check_thread_id(value, error=ValueError)


def new_conversation_id() -> str:
    """A fresh random id for a multi-agent conversation."""
    return "group_" + os.urandom(12).hex()


def participant_thread_id(conversation_id: str, name: str) -> str:
    """The id of participant ``name``'s thread in a conversation: ``<conversation id>.<name>``.

    A participant's thread so names the conversation it belongs to, and a restore can refuse one
    spliced in from another conversation. Too long for a thread id, the tail is a digest.
    """
    candidate = f"{conversation_id}.{name}"
    if len(candidate) <= THREAD_ID_MAX_LENGTH:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:32]
    return f"{conversation_id[: THREAD_ID_MAX_LENGTH - len(digest) - 1]}.{digest}"


_GENERATED = re.compile(r"thread_[0-9a-f]{24}")
"""A random id of ``new_thread_id()``: what participants got before their ids named the
conversation (states written before schema version 2, and their later saves)."""


def check_participant_ids(conversation_id: str, threads: Mapping[str, AgentThread]) -> None:
    """Refuse participant threads that belong to another conversation (or to two participants).

    Conversations started before participant ids named them (every participant with a random
    id) cannot be checked and are accepted as they are.

    Raises:
        ThreadStateError: naming ``participants.<name>.thread_id``.
    """
    owners: dict[str, str] = {}
    for name, thread in threads.items():
        other = owners.setdefault(thread.id, name)
        if other != name:
            raise ThreadStateError(
                f"field 'participants.{name}.thread_id' is {thread.id!r}, also participant "
                f"{other!r}'s thread; every participant has a thread of its own"
            )
    if all(_GENERATED.fullmatch(t.id) for t in threads.values()):
        return
    for name, thread in threads.items():
        expected = participant_thread_id(conversation_id, name)
        if thread.id != expected:
            raise ThreadStateError(
                f"field 'participants.{name}.thread_id' is {thread.id!r}, not this "
                f"conversation's ({expected!r}): a participant thread of another conversation; "
                "restore the state this conversation saved"
            )


def _migrate(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """A version 1 state as version 2: ``manager_state`` was renamed ``runner_state``."""
    if state.get("schema_version") != 1:
        return state
    migrated = {k: v for k, v in state.items() if k != "manager_state"}
    migrated["runner_state"] = state.get("manager_state", {})
    migrated["schema_version"] = 2
    return migrated


def parse_group_state(state: object, *, kind: RunnerKind) -> MultiAgentThreadState:
    """Validate (and migrate) a serialized multi-agent thread; errors name the offending field."""
    if isinstance(state, Mapping):
        given: Mapping[str, Any] = state  # pyright: ignore[reportUnknownVariableType]
        if given.get("type") != GROUP_STATE_TYPE:
            raise ThreadStateError(
                f"not a multi-agent thread state (type {given.get('type')!r}, expected "
                f"{GROUP_STATE_TYPE!r}); a single agent's thread is restored with "
                "agent.deserialize_thread()"
            )
        state = _migrate(given)
    try:
        parsed = MultiAgentThreadState.model_validate(state)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'state'}: {e['msg']}" for e in exc.errors()
        )
        raise ThreadStateError(f"malformed multi-agent thread state: {problems}") from None
    if parsed.kind != kind:
        raise ThreadStateError(
            f"this state belongs to a {parsed.kind} runner, not a {kind}; restore it with the "
            "runner that saved it"
        )
    return parsed


class MultiAgentThread:
    """One multi-agent conversation: each participant's thread, the transcript and the position.

    Made by a runner's ``get_new_thread()`` or ``deserialize_thread(state)``; pass it to the
    runner's ``run`` to continue. A thread is used by one run at a time (runs on the same object
    wait for each other).
    """

    def __init__(
        self,
        *,
        kind: RunnerKind,
        participants: dict[str, AgentThread],
        transcript: ChatMessageStore,
        thread_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self.kind: RunnerKind = kind
        self.id: str = thread_id or new_conversation_id()
        self.user_id = user_id
        self.participants = participants
        """Each participant's own thread, by agent name."""
        self.transcript = transcript
        """Every message of the conversation once, in order, with ``author_name`` set."""
        self.version = 0
        """How many messages the transcript held after this object's last write or restore."""
        self.rounds_used = 0
        """Agent turns taken so far, over all runs."""
        self.last_speaker: str | None = None
        """The agent that spoke last (for a handoff: the one in control)."""
        self.next_speaker: str | None = None
        """Chosen but not yet run: a stopped chat resumes with this agent."""
        self.awaiting: str | None = None
        """The participant whose turn stopped at calls waiting for a person's approval: the next
        run's input answers them, and this agent continues its turn."""
        self.runner_state: dict[str, Any] = {}
        """JSON-able state the runner keeps between turns: a group chat manager's own state,
        a handoff's count of what each agent was shown. Saved with the thread."""
        self._lock = asyncio.Lock()

    @property
    def manager_state(self) -> dict[str, Any]:
        """The old name of :attr:`runner_state`, kept as an alias."""
        return self.runner_state

    @manager_state.setter
    def manager_state(self, value: dict[str, Any]) -> None:
        self.runner_state = value

    def __repr__(self) -> str:
        return (
            f"MultiAgentThread(id={self.id!r}, kind={self.kind!r}, "
            f"participants={list(self.participants)!r}, messages={self.version})"
        )

    async def messages(self) -> list[ChatMessage]:
        """The transcript, oldest first."""
        return await self.transcript.list_messages()

    async def serialize(self) -> dict[str, Any]:
        """The whole conversation as one plain JSON-able, versioned dict.

        Restore it with the runner's ``deserialize_thread``; it continues exactly here. Call it
        between runs: a run in progress on this object is waited for first (so never call it from
        inside the loop consuming that run's ``run_stream``: it would wait for itself).
        """
        async with self._lock:
            participants = {
                name: await thread.serialize() for name, thread in self.participants.items()
            }
            return {
                "type": GROUP_STATE_TYPE,
                "schema_version": GROUP_SCHEMA_VERSION,
                "kind": self.kind,
                "thread_id": self.id,
                "user_id": self.user_id,
                "participants": participants,
                "transcript": {
                    "kind": store_kind(self.transcript),
                    "state": await self.transcript.serialize(),
                },
                "version": self.version,
                "rounds_used": self.rounds_used,
                "last_speaker": self.last_speaker,
                "next_speaker": self.next_speaker,
                "awaiting": self.awaiting,
                "runner_state": copy.deepcopy(self.runner_state),
            }

    async def fork(self) -> MultiAgentThread:
        """An independent branch: the transcript and every participant's thread are forked."""
        async with self._lock:
            branch_id = new_conversation_id()
            participants: dict[str, AgentThread] = {}
            for name, thread in self.participants.items():
                participants[name] = await thread.fork()
                participants[name].id = participant_thread_id(branch_id, name)
            branch = MultiAgentThread(
                kind=self.kind,
                participants=participants,
                transcript=await self.transcript.fork(),
                thread_id=branch_id,
                user_id=self.user_id,
            )
            branch.version = self.version
            branch.rounds_used = self.rounds_used
            branch.last_speaker = self.last_speaker
            branch.next_speaker = self.next_speaker
            branch.awaiting = self.awaiting
            branch.runner_state = copy.deepcopy(self.runner_state)
            return branch


GroupChatThread = MultiAgentThread
"""The old name of :class:`MultiAgentThread`, kept as an alias."""
