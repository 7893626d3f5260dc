"""Memory in a trace: what a turn recalled (hits, kinds, scores) and what it indexed."""

from __future__ import annotations

import json

from tests._otel import Telemetry, attributes
from threadline import ChatAgent, ConversationMemory, InMemoryMemoryStore, ScriptedChatClient
from threadline import _tracing as tr


async def test_recall_and_ingest_spans(telemetry: Telemetry) -> None:
    memory = ConversationMemory(InMemoryMemoryStore())
    agent = ChatAgent(
        ScriptedChatClient(["Noted: hiking.", "You like hiking."]),
        name="pal",
        context_providers=[memory],
    )
    await agent.run("I love hiking in the Alps", thread=agent.get_new_thread(user_id="alice"))
    first_run = telemetry.one("invoke_agent pal")
    ingest = telemetry.one("ingest")
    assert ingest.parent is not None and first_run.context is not None
    assert ingest.parent.span_id == first_run.context.span_id  # learnt after the turn, under it
    assert attributes(ingest)["user.id"] == "alice"
    assert attributes(ingest)["threadline.memory.records"] >= 1  # pyright: ignore[reportOperatorIssue]
    assert "threadline.memory.texts" not in attributes(ingest)

    telemetry.exporter.clear()
    tr.set_capture_content(True)
    await agent.run("Which hiking do I like?", thread=agent.get_new_thread(user_id="alice"))
    run = telemetry.one("invoke_agent pal")
    invoking = telemetry.one(f"invoking {memory.state_key}")
    recall = telemetry.one("recall")
    assert invoking.parent is not None and run.context is not None
    assert invoking.parent.span_id == run.context.span_id
    assert recall.parent is not None and invoking.context is not None
    assert recall.parent.span_id == invoking.context.span_id
    found = attributes(recall)
    hits = found["threadline.memory.hits"]
    assert isinstance(hits, int) and hits >= 1
    kinds = found["threadline.memory.kinds"]
    assert isinstance(kinds, tuple) and len(kinds) == hits  # pyright: ignore[reportUnknownArgumentType]
    assert set(kinds) <= {"turn", "summary"} and "turn" in kinds  # pyright: ignore[reportUnknownArgumentType]
    scores = found["threadline.memory.scores"]
    assert isinstance(scores, tuple) and len(scores) == hits  # pyright: ignore[reportUnknownArgumentType]
    assert all(isinstance(x, float) and x > 0 for x in scores)  # pyright: ignore[reportUnknownVariableType]
    assert list(scores) == sorted(scores, reverse=True)  # pyright: ignore[reportUnknownArgumentType]
    assert found["threadline.memory.query"] == "Which hiking do I like?"
    assert "hiking in the Alps" in str(found["threadline.memory.texts"])
    assert attributes(invoking)["threadline.context.instructions"] is True


async def test_preference_extraction_is_traced_under_the_turn(telemetry: Telemetry) -> None:
    from threadline import UserPreferencesMemory

    fact = {"subject": "diet", "fact": "The user is vegetarian.", "kind": "preference"}
    extractor = ScriptedChatClient([json.dumps({"facts": [fact]})])
    memory = UserPreferencesMemory(InMemoryMemoryStore(), extractor=extractor)
    agent = ChatAgent(ScriptedChatClient(["Noted."]), name="pal", context_providers=[memory])
    thread = agent.get_new_thread(user_id="bob")
    await agent.run("I am vegetarian", thread=thread)
    await memory.wait_pending("bob")
    run = telemetry.one("invoke_agent pal")
    extract = telemetry.one("extract preferences")
    assert extract.parent is not None and run.context is not None
    assert extract.parent.span_id == run.context.span_id
    assert attributes(extract)["user.id"] == "bob"
    assert extract.status.status_code.name == "UNSET"
    stored = telemetry.one("remember preference")
    assert stored.parent is not None and extract.context is not None
    assert stored.parent.span_id == extract.context.span_id
    assert attributes(stored)["threadline.memory.kinds"] == ("preference",)
