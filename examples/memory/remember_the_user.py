"""A user says "I'm vegetarian" in one chat; a week later a new chat knows it.

Runs offline with scripted models (swap in LocalChatClient() or an OpenAI client for real ones):
the agent's model, and a fact extractor answering the strict JSON the extraction call asks for.
Memories are kept in a SQLite file, so they outlive the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline import (
    ChatAgent,
    ConversationMemory,
    ScriptedChatClient,
    SQLiteMemoryStore,
    UserPreferencesMemory,
)

FACTS = {"facts": [{"subject": "diet", "fact": "The user is vegetarian.", "kind": "preference"}]}


async def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    store = SQLiteMemoryStore(folder / "memory.sqlite3", embedder=None)
    now = [datetime(2026, 11, 16, 19, 0, tzinfo=UTC)]
    model = ScriptedChatClient(["Noted: no meat.", "How about a mushroom risotto?"])
    extractor = ScriptedChatClient([json.dumps(FACTS), json.dumps({"facts": []})])
    agent = ChatAgent(
        model,
        "You suggest dinners.",
        context_providers=[
            ConversationMemory(store, clock=lambda: now[0]),
            UserPreferencesMemory(store, extractor=extractor, clock=lambda: now[0]),
        ],
    )

    monday = agent.get_new_thread(user_id="alice")
    await agent.run("I'm vegetarian, and I love Italian food.", thread=monday)
    await monday.end()  # stores the chat's summary, finishes learning from it

    now[0] += timedelta(days=7)
    later = agent.get_new_thread(user_id="alice")
    answer = await agent.run("Which Italian dish should I cook tonight?", thread=later)
    print("What the model was told a week later:")
    print(model.calls[-1].messages[0].text)
    print()
    print("Agent:", answer.text)
    await later.end()  # lets the background fact extraction finish before the store closes

    memory = ConversationMemory(store)
    for hit in await memory.recall("Italian food", user_id="alice"):
        when = f"{hit.occurred_at:%Y-%m-%d}" if hit.occurred_at else "?"
        print(f"recall: {hit.record.kind} of {when}: {hit.text.splitlines()[-1]}")
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
