"""``SequentialProcess``: agents take turns in a fixed order, each building on the ones before.

Each agent receives the process history so far (the user's input and the previous agents'
outputs, other agents' messages shown as named user messages) and adds its own; the final output
is the last agent's. A process takes any chat history as input: assistant and tool messages in
it are shown to every agent the same way another agent's are.

It is a group chat whose manager knows the order (:class:`InOrderManager`): new input starts a
pass with the first agent, each agent is followed by the next, and the last ends the pass. So it
shares the group chat's loop, propagation and resumption: the position is saved with the thread
after every agent, and a process stopped midway (by ``max_rounds``, an error, or the process
ending) resumes with the next agent of the same pass.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence

from threadline.agents.chat_agent import ChatAgent
from threadline.compaction import Compaction
from threadline.memory.provider import ContextProvider
from threadline.multiagent._relay import PropagationFilter
from threadline.multiagent._runner import MultiAgentInput, MultiAgentResponse, StopReason
from threadline.multiagent.group_chat import GroupChat
from threadline.multiagent.managers import SpeakerSelection
from threadline.multiagent.thread import MultiAgentThread, RunnerKind
from threadline.threads.stores.base import ChatMessageStore
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["InOrderManager", "SequentialProcess"]


class InOrderManager:
    """The agent after the last speaker in a fixed order; nobody after the last one.

    It never starts a pass itself: the process names the first agent when new input arrives, so
    a run without input on a finished (or new) process does nothing.
    """

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)

    async def select(self, selection: SpeakerSelection) -> str | None:
        """The next agent of the pass, or ``None`` when the pass is complete."""
        last = selection.last_speaker
        if last not in self.order:
            return None
        position = self.order.index(last) + 1
        return self.order[position] if position < len(self.order) else None


class SequentialProcess(GroupChat):
    """Agents in a defined order, each one's output input to the next (the ADR's second kind).

    Args:
        agents: the ``ChatAgent`` s, in order, with distinct names.
        name: the process's name, for humans.
        filters: per agent, which of the others' messages it sees.
        context_providers: memory consulted on behalf of every agent (see ``allow_user_data``).
        allow_user_data: the agents on whose behalf providers with ``holds_user_data`` are
            consulted; none by default in a process.
        transcript_store_factory: where the shared transcript lives; in memory by default.
        compaction: the default ``Compaction`` of every agent that has none of its own.
    """

    _kind: RunnerKind = "sequential"
    _what = "sequential process"
    _ended: StopReason = "done"

    def __init__(
        self,
        agents: Sequence[ChatAgent],
        *,
        name: str | None = None,
        filters: Mapping[str, PropagationFilter] | None = None,
        context_providers: Sequence[ContextProvider] | None = None,
        allow_user_data: Sequence[str] | None = None,
        transcript_store_factory: Callable[[], ChatMessageStore] | None = None,
        compaction: Compaction | None = None,
    ) -> None:
        order = [agent.name or "" for agent in agents]
        super().__init__(
            agents,
            manager=InOrderManager(order),
            max_rounds=max(1, len(order)),
            name=name,
            filters=filters,
            context_providers=context_providers,
            allow_user_data=allow_user_data if allow_user_data is not None else (),
            transcript_store_factory=transcript_store_factory,
            compaction=compaction,
        )
        self.order = list(self.agents)

    def __repr__(self) -> str:
        return f"SequentialProcess(name={self.name!r}, agents={self.order!r})"

    def _first_after_input(self) -> str | None:
        return self.order[0]  # new input starts a new pass

    async def run(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: MultiAgentThread | None = None,
        max_rounds: int | None = None,
    ) -> MultiAgentResponse:
        """Add the input and run every agent once, in order (``max_rounds`` stops earlier).

        Without input, a stopped pass continues with its next agent. ``response.last_text`` is
        the last agent's output.
        """
        return await self._run(messages, thread, max_rounds=max_rounds)

    def run_stream(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: MultiAgentThread | None = None,
        max_rounds: int | None = None,
    ) -> AsyncGenerator[AgentRunResponseUpdate, None]:
        """As ``run``, yielding each agent's output as it is generated, with its ``author_name``."""
        return self._run_stream(messages, thread, max_rounds=max_rounds)
