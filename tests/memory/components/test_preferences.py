"""``UserPreferencesMemory``: facts extracted in the background, superseded, used in any thread."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import pytest

from threadline import ChatAgent, ChatMessage, Role, ScriptedChatClient, UsageError
from threadline.clients.base import ChatOptions
from threadline.memory.preferences import ExtractedFact, UserPreferencesMemory
from threadline.memory.records import MemoryScope
from threadline.memory.store import MemoryStore
from threadline.types.responses import ChatResponse


def facts(*pairs: tuple[str, str]) -> str:
    """An extractor answer in the promised JSON shape."""
    return json.dumps({"facts": [{"subject": s, "fact": f, "kind": "fact"} for s, f in pairs]})


def system_text(client: ScriptedChatClient, call: int = -1) -> str:
    messages = client.calls[call].messages
    return messages[0].text if messages and messages[0].role == Role.SYSTEM else ""


class SlowExtractor(ScriptedChatClient):
    """A scripted extractor that takes ``delay`` seconds to answer, like a real model."""

    def __init__(self, replies: Sequence[str], delay: float) -> None:
        super().__init__(replies)
        self.delay = delay

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        await asyncio.sleep(self.delay)
        return await super().get_response(messages, options=options)


async def test_a_fact_from_one_thread_is_in_the_next_threads_request(store: MemoryStore) -> None:
    extractor = SlowExtractor([facts(("diet", "The user is vegetarian."))], delay=0.05)
    memory = UserPreferencesMemory(store, extractor=extractor)
    client = ScriptedChatClient(["Noted!", "Try a mushroom risotto."])
    agent = ChatAgent(client, "You suggest recipes.", context_providers=memory)
    await agent.run("I'm vegetarian.", thread=agent.get_new_thread(user_id="alice"))
    # no explicit wait: the next call of this user waits for the pending extraction
    await agent.run("What should I cook tonight?", thread=agent.get_new_thread(user_id="alice"))
    assert "The user is vegetarian." in system_text(client)
    assert "vegetarian" not in system_text(client, 0)
    assert "I'm vegetarian." in extractor.calls[0].messages[-1].text
    assert extractor.calls[0].options.get("temperature") == 0.0
    await memory.aclose()


async def test_a_contradicting_fact_supersedes_and_an_identical_one_is_not_duplicated(
    store: MemoryStore,
) -> None:
    extractor = ScriptedChatClient(
        [
            facts(("diet", "The user is vegetarian.")),
            facts(("diet", "The user is vegetarian.")),
            facts(("Diet", "The user eats fish again.")),
        ]
    )
    memory = UserPreferencesMemory(store, extractor=extractor)
    client = ScriptedChatClient(["a", "b", "c", "d"])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    for text in ("I'm vegetarian.", "I'm still vegetarian.", "I eat fish again.", "Dinner idea?"):
        await agent.run(text, thread=thread)
    scope = MemoryScope(user_id="alice")
    current = await store.list(scope=scope, kinds=["fact", "preference"])
    assert [r.text for r in current] == ["The user eats fish again."]
    every = await store.list(scope=scope, kinds=["fact", "preference"], include_superseded=True)
    old = [r for r in every if r.text == "The user is vegetarian."]
    assert len(old) == 1 and old[0].valid_to is not None  # kept for audit, not deleted
    assert "fish" in system_text(client) and "vegetarian" not in system_text(client)
    # the extractor is shown the known facts, so it can reuse their subject keys
    assert "diet: The user is vegetarian." in extractor.calls[2].messages[-1].text


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! The user likes cats.",
        '{"facts": "vegetarian"}',
        '{"facts": [{"subject": 3, "fact": "x"}]}',
        "[1, 2]",
        RuntimeError("extractor down"),
    ],
)
async def test_junk_from_the_extractor_stores_nothing_and_warns(
    store: MemoryStore, answer: str | BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    memory = UserPreferencesMemory(store, extractor=ScriptedChatClient([answer]))
    client = ScriptedChatClient(["ok", "still fine"])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        await agent.run("I love cats.", thread=thread)
        await agent.run("Hello again.", thread=thread)
    assert await store.list(scope=MemoryScope(user_id="alice")) == []
    assert any("extract" in r.getMessage() for r in caplog.records)


async def test_fenced_json_is_accepted(store: MemoryStore) -> None:
    answer = "```json\n" + facts(("pet", "The user has a cat named Miso.")) + "\n```"
    memory = UserPreferencesMemory(store, extractor=ScriptedChatClient([answer]))
    agent = ChatAgent(ScriptedChatClient(["ok"]), context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("My cat Miso is asleep.", thread=thread)
    await thread.end()  # awaits the background extraction
    [record] = await store.list(scope=MemoryScope(user_id="alice"))
    assert record.metadata["subject"] == "pet" and record.thread_id == thread.id


async def test_a_slow_extraction_delays_the_next_call_only_up_to_the_timeout(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    extractor = SlowExtractor([facts(("city", "The user lives in Porto."))], delay=0.5)
    memory = UserPreferencesMemory(store, extractor=extractor, extraction_timeout=0.01)
    client = ScriptedChatClient(["ok", "ok"])
    agent = ChatAgent(client, context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        await agent.run("I live in Porto.", thread=thread)
        await agent.run("Hi.", thread=thread)
    assert "Porto" not in system_text(client)
    assert any("still running" in r.getMessage() for r in caplog.records)
    await memory.aclose()  # the extraction finishes; nothing is left running
    assert [r.text for r in await store.list(scope=MemoryScope(user_id="alice"))] == [
        "The user lives in Porto."
    ]


async def test_a_thread_without_user_is_refused_before_any_model_call(store: MemoryStore) -> None:
    client = ScriptedChatClient(["never"])
    agent = ChatAgent(client, context_providers=UserPreferencesMemory(store))
    with pytest.raises(UsageError, match="has no user_id"):
        await agent.run("I'm vegetarian.", thread=agent.get_new_thread())
    assert client.calls == []


async def test_facts_of_two_users_stay_apart_and_forget_removes_only_one(
    store: MemoryStore,
) -> None:
    memory = UserPreferencesMemory(store)
    for user in ("alice", "bob"):  # identical facts for both users
        await memory.add_facts([ExtractedFact("diet", "The user is vegan.", "fact")], user_id=user)
    assert (await store.forget(user_id="alice")).records == 1
    assert await memory.facts(user_id="alice") == []
    assert await store.search("vegan", scope=MemoryScope(user_id="alice")) == []
    assert [r.text for r in await memory.facts(user_id="bob")] == ["The user is vegan."]


async def test_a_restored_thread_does_not_extract_the_same_messages_again(
    store: MemoryStore,
) -> None:
    extractor = ScriptedChatClient([facts(("name", "The user is called Ana."))])
    memory = UserPreferencesMemory(store, extractor=extractor)
    agent = ChatAgent(ScriptedChatClient(["Hi Ana."]), context_providers=memory)
    thread = agent.get_new_thread(user_id="ana")
    await agent.run("I'm Ana.", thread=thread)
    restored = await agent.deserialize_thread(await thread.serialize())
    assert len(extractor.calls) == 1
    replay = (await restored.message_store.list_messages())[:1]  # type: ignore[union-attr]
    await memory.invoked(replay, [], None, thread=restored)  # already extracted: skipped
    await memory.wait_pending()
    assert len(extractor.calls) == 1
    assert [r.text for r in await memory.facts(user_id="ana")] == ["The user is called Ana."]


class GatedExtractor(ScriptedChatClient):
    """A scripted extractor that answers only once the test opens its gate (a slow model)."""

    def __init__(self, replies: Sequence[str]) -> None:
        super().__init__(replies)
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        self.started.set()
        await self.gate.wait()
        return await super().get_response(messages, options=options)


async def test_forget_outranks_an_extraction_still_running(store: MemoryStore) -> None:
    """Forgetting a user while their extraction runs: the fact must not come back afterwards."""
    extractor = GatedExtractor(
        [facts(("diet", "The user is vegetarian.")), facts(("city", "The user lives in Oslo."))]
    )
    memory = UserPreferencesMemory(store, extractor=extractor)
    agent = ChatAgent(ScriptedChatClient(["Noted!", "Nice."]), context_providers=memory)
    thread = agent.get_new_thread(user_id="alice")
    await agent.run("I'm vegetarian.", thread=thread)
    await asyncio.wait_for(extractor.started.wait(), 10)  # the extraction is under way
    await store.forget(user_id="alice")
    extractor.gate.set()
    await memory.wait_pending()
    scope = MemoryScope(user_id="alice")
    assert await store.list(scope=scope, include_superseded=True) == []
    assert await memory.facts(user_id="alice") == []
    # what the user says after being forgotten is learnt again
    await agent.run("I live in Oslo.", thread=thread)
    await memory.wait_pending()
    assert [r.text for r in await memory.facts(user_id="alice")] == ["The user lives in Oslo."]
    await memory.add_facts([ExtractedFact("pet", "Has a cat.", "fact")], user_id="alice")
    assert len(await memory.facts(user_id="alice")) == 2
