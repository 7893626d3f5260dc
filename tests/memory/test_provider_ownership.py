"""Who owns a shared thread's providers: the agent that last prepared the thread.

Two agents with providers of their own take turns on one local thread (as multi-agent processes
do). Only the current agent's providers are checkpointed and ended; the other's state stays in the
thread untouched, is serialized as it is, and is there again when its agent comes back.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline import AgentThread, ChatAgent, ChatMessage, ContextProvider, ScriptedChatClient


class Notes(ContextProvider):
    """Counts the turns it saw; logs every hook, tagged with its state key."""

    def __init__(self, state_key: str, log: list[str]) -> None:
        super().__init__(state_key=state_key)
        self.log = log

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        state = self.state(thread)
        state["turns"] = state.get("turns", 0) + 1

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        self.log.append(f"checkpoint {self.state_key}")
        self.state(thread)["checkpoints"] = self.state(thread).get("checkpoints", 0) + 1

    async def thread_ended(self, thread: AgentThread) -> None:
        self.log.append(f"ended {self.state_key}")


async def test_the_agent_that_last_prepared_a_thread_owns_its_providers() -> None:
    log: list[str] = []
    alice = ChatAgent(ScriptedChatClient(["a1", "a2"]), context_providers=[Notes("alice", log)])
    bob = ChatAgent(ScriptedChatClient(["b1"]), context_providers=[Notes("bob", log)])
    thread = alice.get_new_thread()
    await alice.run("hi alice", thread=thread)
    await bob.run("hi bob", thread=thread)

    state = await thread.serialize()
    assert log == ["checkpoint bob"]  # not alice's: bob prepared the thread last
    # Alice's state is kept as it was, and saved with the thread.
    assert state["context_providers"] == {
        "alice": {"turns": 1},
        "bob": {"turns": 1, "checkpoints": 1},
    }

    # Restored by bob: alice's state still travels untouched.
    restored = await bob.deserialize_thread(state)
    assert restored.context_state["alice"] == {"turns": 1}
    # Alice takes the thread back and finds her state where she left it.
    await alice.run("back", thread=restored)
    log.clear()
    again = await restored.serialize()
    assert log == ["checkpoint alice"]
    assert again["context_providers"]["alice"] == {"turns": 2, "checkpoints": 1}
    assert again["context_providers"]["bob"] == {"turns": 1, "checkpoints": 1}

    log.clear()
    await restored.end()
    assert log == ["ended alice"]


async def test_providers_of_one_state_key_in_two_agents_share_the_state() -> None:
    log: list[str] = []
    first = ChatAgent(ScriptedChatClient(["1"]), context_providers=[Notes("shared", log)])
    second = ChatAgent(ScriptedChatClient(["2"]), context_providers=[Notes("shared", log)])
    thread = first.get_new_thread()
    await first.run("x", thread=thread)
    await second.run("y", thread=thread)
    assert thread.context_state == {"shared": {"turns": 2}}
