"""Suspend and resume a thread kept in SQLite, across processes.

Run it twice: the second run continues the conversation the first one saved.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from threadline import ChatAgent, ScriptedChatClient, SQLiteChatMessageStore


async def main(home: Path) -> None:
    db, saved = home / "threads.db", home / "thread.json"
    agent = ChatAgent(
        ScriptedChatClient(["Hello! I will remember this."]),
        instructions="You are a helpful assistant",
        chat_message_store_factory=lambda: SQLiteChatMessageStore(db),
    )
    if saved.exists():
        thread = await agent.deserialize_thread(json.loads(saved.read_text()))
        store = thread.message_store
        assert store is not None  # a local thread: it holds a store
        print("resumed a thread of", len(await store.list_messages()), "messages")
    else:
        thread = agent.get_new_thread()
    response = await agent.run("Please remember that I like tea.", thread=thread)
    print(f"Agent: {response.text}")
    saved.write_text(json.dumps(await thread.serialize()))
    print(f"saved to {saved} (the state names the thread; the messages live in {db.name})")


if __name__ == "__main__":
    folder = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(tempfile.gettempdir()) / "threadline-example"
    )
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(folder))
