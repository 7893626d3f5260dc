"""An agent module for the ``threadline serve`` test (imported by the server subprocess)."""

from __future__ import annotations

from threadline import ChatAgent, ScriptedChatClient

agent = ChatAgent(ScriptedChatClient(["pong"] * 100), "CLI agent.")


def make_agent() -> ChatAgent:
    return ChatAgent(ScriptedChatClient(["made"] * 10))


# For the crash test: answers every turn of a long stream of them.
endless = ChatAgent(ScriptedChatClient(["pong"] * 100_000), "Crash test agent.")
