"""Encrypt message bodies at rest, and read back only the newest messages that fit a budget.

Runs anywhere (SQLite). The master key would normally come from a secret manager.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path

from threadline import ChatAgent, EncryptedCodec, ScriptedChatClient, SQLiteChatMessageStore
from threadline.exceptions import StoreError


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "threads.db"
    key = os.urandom(32)
    agent = ChatAgent(
        ScriptedChatClient(["Noted.", "Your PIN is 4321."]),
        chat_message_store_factory=lambda: SQLiteChatMessageStore(db, codec=EncryptedCodec(key)),
    )
    thread = agent.get_new_thread()
    await agent.run("My PIN is 4321, keep it safe.", thread=thread)
    reply = await agent.run("What is my PIN?", thread=thread)
    print(f"Agent: {reply.text}")

    with sqlite3.connect(db) as conn:
        raw = b"".join(
            bytes(row[0]) for row in conn.execute("SELECT body FROM threadline_messages")
        )
    print("PIN visible in the database file:", b"4321" in raw)

    store = thread.message_store
    assert isinstance(store, SQLiteChatMessageStore)
    newest = await store.list_messages(max_tokens=20)
    print("newest messages within 20 tokens:", [m.text for m in newest])

    stranger = SQLiteChatMessageStore(
        db, thread_id=store.thread_id, codec=EncryptedCodec(b"x" * 32)
    )
    try:
        await stranger.list_messages()
    except StoreError as exc:
        print("with the wrong key:", exc)


if __name__ == "__main__":
    asyncio.run(main())
