"""``SequentialProcess``: agents take turns in a fixed order, each building on the ones before.

Each agent receives the process history so far (the user's input and the previous agents'
outputs, other agents' messages shown as named user messages) and adds its own; the final output
is the last agent's. A process takes any chat history as input: assistant and tool messages in
it are shown to every agent the same way another agent's are.

The position is saved with the thread after every agent: a process stopped midway (by
``max_rounds``, an error, or the process ending) resumes with the next agent of the same pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from threadline.agents.chat_agent import ChatAgent
from threadline.memory.provider import ContextProvider
from threadline.multiagent._relay import PropagationFilter
from threadline.multiagent._runner import (
    GroupChatResponse,
    MultiAgentInput,
    MultiAgentRunner,
    _Finished,
    check_rounds,
)
from threadline.multiagent.thread import GroupChatThread, RunnerKind
from threadline.threads.stores.base import ChatMessageStore
from threadline.types.messages import ChatMessage
from threadline.types.responses import AgentRunResponseUpdate

__all__ = ["SequentialProcess"]


class SequentialProcess(MultiAgentRunner):
    """Agents in a defined order, each one's output input to the next (the ADR's second kind).

    Args:
        agents: the ``ChatAgent`` s, in order, with distinct names.
        name: the process's name, for humans.
        filters: per agent, which of the others' messages it sees.
        context_providers: memory consulted on behalf of every agent (see ``allow_user_data``).
        allow_user_data: the agents on whose behalf providers with ``holds_user_data`` are
            consulted; none by default in a process.
        transcript_store_factory: where the shared transcript lives; in memory by default.
    """

    _kind: RunnerKind = "sequential"

    def __init__(
        self,
        agents: Sequence[ChatAgent],
        *,
        name: str | None = None,
        filters: Mapping[str, PropagationFilter] | None = None,
        context_providers: Sequence[ContextProvider] | None = None,
        allow_user_data: Sequence[str] | None = None,
        transcript_store_factory: Callable[[], ChatMessageStore] | None = None,
    ) -> None:
        super().__init__(
            agents,
            name=name,
            filters=filters,
            context_providers=context_providers,
            allow_user_data=allow_user_data if allow_user_data is not None else (),
            transcript_store_factory=transcript_store_factory,
            what="sequential process",
        )
        self.order = list(self.agents)

    def __repr__(self) -> str:
        return f"SequentialProcess(name={self.name!r}, agents={self.order!r})"

    async def run(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: GroupChatThread | None = None,
        max_rounds: int | None = None,
    ) -> GroupChatResponse:
        """Add the input and run every agent once, in order (``max_rounds`` stops earlier).

        Without input, a stopped pass continues with its next agent. ``response.last_text`` is
        the last agent's output.
        """
        return await self._run(messages, thread, max_rounds=max_rounds)

    def run_stream(
        self,
        messages: MultiAgentInput = None,
        *,
        thread: GroupChatThread | None = None,
        max_rounds: int | None = None,
    ) -> AsyncIterator[AgentRunResponseUpdate]:
        """As ``run``, yielding each agent's output as it is generated, with its ``author_name``."""
        return self._run_stream(messages, thread, max_rounds=max_rounds)

    async def _events(
        self, messages: list[ChatMessage], thread: GroupChatThread, *, stream: bool, **kw: Any
    ) -> AsyncIterator[AgentRunResponseUpdate | _Finished]:
        limit: int | None = kw.get("max_rounds")
        limit = len(self.order) if limit is None else check_rounds(limit)
        if messages:
            await self._claim(thread)
            await self._broadcast(thread, messages, author=None)
            thread.next_speaker = self.order[0]  # new input starts a new pass
        produced: list[ChatMessage] = []
        rounds = 0
        while thread.next_speaker is not None:
            if rounds >= limit:
                yield _Finished(produced, "max_rounds")
                return
            speaker = thread.next_speaker
            await self._claim(thread)
            turn: list[ChatMessage] = []
            async for event in self._speak(thread, speaker, (), stream=stream):
                if isinstance(event, _Finished):
                    turn = event.messages
                else:
                    yield event
            await self._broadcast(thread, turn, author=speaker)
            produced.extend(turn)
            position = self.order.index(speaker) + 1
            thread.next_speaker = self.order[position] if position < len(self.order) else None
            thread.last_speaker = speaker
            thread.rounds_used += 1
            rounds += 1
        yield _Finished(produced, "done")
