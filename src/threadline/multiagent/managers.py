"""Group chat managers: who speaks next, or ``None`` to end the chat.

A manager is stateless like an agent: what it must remember between selections lives in
``SpeakerSelection.state``, which is saved with the group thread, so a restored chat makes the
same choices. The runner asks the manager at most once per turn and records the answer before the
turn runs, so a chat stopped between two turns resumes with the speaker already chosen.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from threadline.exceptions import GroupChatError
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.agents.chat_agent import ChatAgent

__all__ = [
    "AgentManager",
    "FunctionManager",
    "GroupChatManager",
    "RoundRobinManager",
    "SpeakerSelection",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerSelection:
    """What a manager decides from."""

    transcript: Sequence[ChatMessage]
    """The conversation so far, every message with its ``author_name``."""
    participants: Sequence[str]
    """The participants' names, in the order the chat was made with."""
    last_speaker: str | None
    """The agent that spoke last (``None`` before the first turn)."""
    state: dict[str, Any]
    """The manager's own JSON-able state, saved with the thread; change it in place."""


@runtime_checkable
class GroupChatManager(Protocol):
    """Chooses the next speaker of a group chat."""

    async def select(self, selection: SpeakerSelection) -> str | None:
        """The next speaker's name, or ``None`` to end the chat."""
        ...


class RoundRobinManager:
    """Each participant in turn, in the order given, starting with the first."""

    async def select(self, selection: SpeakerSelection) -> str | None:
        """The participant after the last speaker."""
        names = selection.participants
        if selection.last_speaker not in names:
            return names[0]
        return names[(names.index(selection.last_speaker) + 1) % len(names)]


class FunctionManager:
    """Chooses with a plain function of the transcript (sync or async), e.g. a keyword router.

    The function returns a participant's name, or ``None`` to end the chat.
    """

    def __init__(
        self, fn: Callable[[Sequence[ChatMessage]], str | None | Awaitable[str | None]]
    ) -> None:
        self.fn = fn

    async def select(self, selection: SpeakerSelection) -> str | None:
        """Call the function with the transcript."""
        result = self.fn(selection.transcript)
        if inspect.isawaitable(result):
            result = await result
        return result


_END = "DONE"


class AgentManager:
    """A model reads the transcript and names the next speaker, or ``DONE`` to end the chat.

    The agent gets a fresh thread per decision holding the transcript as text, so nothing of the
    manager's reasoning leaks into the participants' threads. An unknown name is answered with a
    correction and retried once; a second unknown name raises ``GroupChatError``.
    """

    def __init__(self, agent: ChatAgent, *, instructions: str | None = None) -> None:
        self.agent = agent
        self.instructions = instructions

    def _prompt(self, selection: SpeakerSelection) -> str:
        lines = [f"{m.author_name or m.role.value}: {m.text}" for m in selection.transcript]
        names = ", ".join(selection.participants)
        guide = self.instructions or (
            "You manage a group chat. Read the conversation and choose who speaks next."
        )
        return (
            f"{guide}\nParticipants: {names}.\n"
            f"Answer with exactly one participant name, or {_END} if the conversation is complete."
            "\n\nConversation:\n" + "\n".join(lines)
        )

    async def select(self, selection: SpeakerSelection) -> str | None:
        """Ask the agent; retry once on an unknown name."""
        names = list(selection.participants)
        thread = self.agent.get_new_thread()
        message: ChatMessage | str = ChatMessage(Role.USER, self._prompt(selection))
        answer = ""
        for _ in range(2):
            response = await self.agent.run(message, thread=thread)
            answer = response.text.strip().strip(".").strip()
            if answer.upper() == _END:
                return None
            for name in names:
                if answer.lower() == name.lower():
                    return name
            message = (
                f"{answer!r} is not a participant. Answer with exactly one of: "
                f"{', '.join(names)}, or {_END}."
            )
        raise GroupChatError(
            f"manager agent {self.agent.name or self.agent.id!r} named {answer!r} twice, which is "
            f"not a participant ({', '.join(names)}); give it instructions that list the names, "
            "or use RoundRobinManager / FunctionManager"
        )
