from __future__ import annotations

import inspect

import pytest

from threadline import ChatAgent, ContextProvider, ScriptedChatClient, UsageError
from threadline.clients.base import RunOptions


def get_time() -> str:
    """The time of day."""
    return "noon"


class Notes(ContextProvider):
    pass


def test_replace_keeps_every_constructor_argument_it_is_not_told_to_change() -> None:
    client = ScriptedChatClient(["hi"])
    provider = Notes()
    agent = ChatAgent(
        client,
        "be brief",
        id="agent_1",
        name="ada",
        description="answers",
        tools=[get_time],
        context_providers=[provider],
        chat_message_store_factory=None,
        max_tool_iterations=3,
        default_options=RunOptions(temperature=0.1),
    )

    derived = agent.replace(instructions="be long")

    assert derived is not agent
    assert derived.instructions == "be long"
    assert agent.instructions == "be brief"
    assert derived.chat_client is client
    assert (derived.id, derived.name, derived.description) == ("agent_1", "ada", "answers")
    assert list(derived.tools) == ["get_time"]
    assert derived.context_providers == (provider,)
    assert derived.max_tool_iterations == 3
    assert derived.default_options == RunOptions(temperature=0.1)


def test_replace_covers_every_constructor_parameter() -> None:
    # A field added to ChatAgent must be carried by replace(), or derived agents drop it.
    from threadline.agents.chat_agent import AgentChanges

    parameters = set(inspect.signature(ChatAgent.__init__).parameters) - {"self"}
    assert parameters == set(AgentChanges.__annotations__)


def test_replace_checks_the_result_like_a_new_agent() -> None:
    agent = ChatAgent(ScriptedChatClient([]), context_providers=[Notes()])
    with pytest.raises(UsageError, match="share the state_key"):
        agent.replace(context_providers=[Notes(), Notes()])
