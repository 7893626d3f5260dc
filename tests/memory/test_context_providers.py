"""ContextProvider hooks from the ADR, per-thread state, and composition of several providers."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    ClientError,
    Context,
    ContextProvider,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    ScriptedChatClient,
    UsageError,
    tool,
)


class UserFacts(ContextProvider):
    """Learns the user's name from what they say; offers it as instructions and as a tool."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def thread_created(self, thread: AgentThread) -> None:
        self.events.append(f"created {thread.id}")

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        self.events.append("invoking " + " | ".join(m.text for m in messages))
        name = self.state(thread).get("name")
        facts = self.state(thread)

        @tool(name="recall_name")
        def recall() -> str:
            """The user's name, if known."""
            return facts.get("name", "unknown")

        return Context(
            instructions=f"The user's name is {name}." if name else None,
            messages=[ChatMessage(Role.USER, f"(memory) name={name}")] if name else None,
            tools=[recall],
        )

    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        self.events.append(
            f"invoked {len(response_messages)} {type(exception).__name__ if exception else None}"
        )
        for message in request_messages:
            if message.text.startswith("My name is "):
                self.state(thread)["name"] = message.text.removeprefix("My name is ")

    async def thread_checkpoint(self, thread: AgentThread) -> None:
        self.events.append("checkpoint")

    async def thread_ended(self, thread: AgentThread) -> None:
        self.events.append("ended")


class Style(ContextProvider):
    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        return Context(instructions="Answer in one sentence.")


async def test_hooks_run_in_order_and_context_reaches_only_that_call() -> None:
    facts = UserFacts()
    client = ScriptedChatClient(["Hi Alice.", "You are Alice."])
    agent = ChatAgent(client, instructions="You are helpful.", context_providers=[facts, Style()])
    thread = agent.get_new_thread()
    await agent.run("My name is Alice", thread=thread)
    await agent.run("Who am I?", thread=thread)

    assert facts.events == [
        f"created {thread.id}",
        "invoking My name is Alice",
        "invoked 1 None",
        "invoking Who am I?",
        "invoked 1 None",
    ]
    first, second = client.calls
    # Providers compose in order after the agent's own instructions.
    assert first.messages[0].text == "You are helpful.\n\nAnswer in one sentence."
    assert second.messages[0].text == (
        "You are helpful.\n\nThe user's name is Alice.\nAnswer in one sentence."
    )
    # Context messages sit right before the new input, for this call only.
    assert [m.text for m in second.messages[1:]] == [
        "My name is Alice",
        "Hi Alice.",
        "(memory) name=Alice",
        "Who am I?",
    ]
    assert thread.message_store is not None
    assert "(memory) name=Alice" not in [m.text for m in await thread.message_store.list_messages()]
    # Tools a provider offers are sent to the model.
    assert [t.name for t in second.options.get("tools", [])] == ["recall_name"]


async def test_a_providers_tool_is_callable_by_the_model() -> None:
    client = ScriptedChatClient(
        ["ok", [FunctionCallContent(call_id="c1", name="recall_name", arguments="{}")], "Alice!"]
    )
    agent = ChatAgent(client, context_providers=[UserFacts()])
    thread = agent.get_new_thread()
    await agent.run("My name is Alice", thread=thread)
    response = await agent.run("Use your tool: who am I?", thread=thread)
    assert response.text == "Alice!"
    result = client.calls[2].messages[-1].contents[0]
    assert isinstance(result, FunctionResultContent) and result.result == "Alice"


async def test_provider_state_is_per_thread_and_saved_with_it() -> None:
    facts = UserFacts()
    agent = ChatAgent(ScriptedChatClient(["a", "b", "c"]), context_providers=[facts])
    alice, bob = agent.get_new_thread(), agent.get_new_thread()
    await agent.run("My name is Alice", thread=alice)
    await agent.run("My name is Bob", thread=bob)
    assert alice.context_state["UserFacts"] == {"name": "Alice"}
    assert bob.context_state["UserFacts"] == {"name": "Bob"}

    state = json.loads(json.dumps(await alice.serialize()))
    assert facts.events[-1] == "checkpoint"  # serialize() checkpoints providers first
    fresh_facts = UserFacts()
    other_client = ScriptedChatClient(["x"])
    other_agent = ChatAgent(other_client, context_providers=[fresh_facts])
    restored = await other_agent.deserialize_thread(state)
    await other_agent.run("hi", thread=restored)
    # Restored state is used, and thread_created is not called again for a known thread.
    assert fresh_facts.events[0] == "invoking hi"
    assert other_client.calls[0].messages[0].text == "The user's name is Alice."

    await restored.end()
    assert fresh_facts.events[-1] == "ended"


async def test_invoked_hears_about_failures() -> None:
    facts = UserFacts()
    agent = ChatAgent(ScriptedChatClient([ClientError("down")]), context_providers=[facts])
    with pytest.raises(ClientError):
        await agent.run("hi")
    assert facts.events[-1] == "invoked 0 ClientError"


def test_two_providers_with_one_state_key_are_refused() -> None:
    with pytest.raises(
        UsageError,
        match=r"Style and Style share the state_key 'Style'.*Style\(state_key='work_facts'\)",
    ):
        ChatAgent(ScriptedChatClient([]), context_providers=[Style(), Style()])


def lookup_city(user: str) -> str:
    """The city a user lives in.

    Args:
        user: the user's name.
    """
    return {"alice": "Oslo"}.get(user, "unknown")


class CityTools(ContextProvider):
    """Offers a plain function as a tool, as ``ChatAgent(tools=[fn])`` accepts one."""

    async def invoking(self, messages: Sequence[ChatMessage], *, thread: AgentThread) -> Context:
        return Context(tools=[lookup_city])


async def test_a_provider_may_offer_plain_functions_as_tools() -> None:
    call = FunctionCallContent(
        call_id="c1", name="lookup_city", arguments=json.dumps({"user": "alice"})
    )
    client = ScriptedChatClient([[call], "Oslo."])
    agent = ChatAgent(client, context_providers=[CityTools()])
    assert (await agent.run("Where does Alice live?")).text == "Oslo."
    (sent,) = client.calls[0].options.get("tools", [])
    assert sent.description == "The city a user lives in."
    assert sent.parameters["properties"]["user"]["description"] == "the user's name."
    result = client.calls[1].messages[-1].contents[0]
    assert isinstance(result, FunctionResultContent) and result.result == "Oslo"


async def test_a_provider_tool_may_not_replace_an_agent_tool() -> None:
    client = ScriptedChatClient(["never sent"])
    agent = ChatAgent(client, tools=[lookup_city], context_providers=[CityTools()])
    with pytest.raises(
        UsageError,
        match="context provider 'CityTools' offers a tool named 'lookup_city', but the agent",
    ):
        await agent.run("hi")
    assert client.calls == []  # refused before any model call


async def test_two_providers_may_not_offer_one_tool_name() -> None:
    agent = ChatAgent(
        ScriptedChatClient([]),
        context_providers=[CityTools(state_key="a"), CityTools(state_key="b")],
    )
    with pytest.raises(
        UsageError, match="provider 'b' offers a tool named 'lookup_city', but context provider 'a'"
    ):
        await agent.run("hi")


async def test_providers_work_with_service_threads() -> None:
    client = ScriptedChatClient(["a", "b"], service_threads=True)
    agent = ChatAgent(client, context_providers=[UserFacts()])
    thread = agent.get_new_thread()
    await agent.run("My name is Alice", thread=thread)
    await agent.run("Who am I?", thread=thread)
    assert client.calls[1].sent[0].text == "The user's name is Alice."
    state = await thread.serialize()
    assert state["context_providers"] == {"UserFacts": {"name": "Alice"}}


def test_a_state_key_fixed_by_a_subclass_cannot_be_silently_overridden() -> None:
    class Fixed(ContextProvider):
        state_key = "fixed"  # pyright: ignore[reportAssignmentType, reportIncompatibleMethodOverride]

    assert Fixed().state_key == "fixed"
    with pytest.raises(UsageError, match=r"fixes state_key='fixed'.*pass state_key=\.\.\. to"):
        Fixed(state_key="other")
    with pytest.raises(ValueError, match="state_key must be a non-empty string"):
        Style(state_key="")
