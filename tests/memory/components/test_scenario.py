"""The issue's scenario end to end with the embedded model: a preference and a past turn, a week on.

The agent's model is the real embedded llama.cpp model; only the fact *extractor* is scripted (the
135M model's extraction is not reliable enough to assert on). The model's answers are not
asserted (the model is weak); what it was *sent* is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline import ChatAgent, ChatMessage, ScriptedChatClient
from threadline.clients.base import ChatOptions
from threadline.clients.local import LocalChatClient
from threadline.memory import ConversationMemory, SQLiteMemoryStore, UserPreferencesMemory
from threadline.types.responses import ChatResponse, ChatResponseUpdate

MONDAY = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)


class Recording:
    """Passes every call to the embedded model and keeps what it was sent."""

    def __init__(self, inner: LocalChatClient) -> None:
        self.inner = inner
        self.sent: list[list[ChatMessage]] = []

    @property
    def service_name(self) -> str:
        return self.inner.service_name

    @property
    def stores_history(self) -> bool:
        return False

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        self.sent.append(list(messages))
        return await self.inner.get_response(messages, options=options)

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        self.sent.append(list(messages))
        async for update in self.inner.get_streaming_response(messages, options=options):
            yield update


async def test_vegetarian_a_week_later_with_the_embedded_model(
    tmp_path: Path, local_model_path: Path
) -> None:
    clock = [MONDAY]
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    extractor = ScriptedChatClient(
        [
            json.dumps(
                {"facts": [{"subject": "diet", "fact": "The user is vegetarian.", "kind": "fact"}]}
            ),
            json.dumps({"facts": []}),
        ]
    )
    model = Recording(LocalChatClient(local_model_path, n_ctx=2048, max_tokens=8))
    agent = ChatAgent(
        model,
        "You suggest dinners.",
        context_providers=[
            ConversationMemory(store, clock=lambda: clock[0]),
            UserPreferencesMemory(store, extractor=extractor, clock=lambda: clock[0], tools=False),
        ],
    )
    async with agent:
        first = agent.get_new_thread(user_id="alice")
        await agent.run("I'm vegetarian, and my favourite cuisine is Sicilian.", thread=first)
        await first.end()

        clock[0] = MONDAY + timedelta(days=7)
        second = agent.get_new_thread(user_id="alice")
        await agent.run("Any dinner idea in the Sicilian style?", thread=second)

        system = model.sent[-1][0].text
        assert system.startswith("You suggest dinners.")
        assert "The user is vegetarian." in system
        assert "favourite cuisine is Sicilian" in system
        assert "2026-11-16 (Monday)" in system and first.id in system

        # another user's new thread gets none of it
        other = agent.get_new_thread(user_id="bob")
        await agent.run("Any dinner idea in the Sicilian style?", thread=other)
        assert "vegetarian" not in model.sent[-1][0].text
    await store.aclose()
