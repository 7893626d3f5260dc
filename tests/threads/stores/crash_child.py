"""Child process of the crash-safety test: appends turns until it is killed.

After each append returns it prints ``ack <turn>``, so the parent knows which turns the store
acknowledged before the SIGKILL. Run as ``python crash_child.py '<json config>'``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from threadline.threads.stores.base import ChatMessageStore
from threadline.types.messages import ChatMessage, Role


def open_store(config: dict[str, Any]) -> ChatMessageStore:
    kind = config["kind"]
    if kind == "sqlite":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        return SQLiteChatMessageStore(config["path"], thread_id=config["thread_id"])
    if kind == "redis":
        from threadline.threads.stores.redis import RedisChatMessageStore

        return RedisChatMessageStore(
            url=config["url"], key_prefix=config["prefix"], thread_id=config["thread_id"]
        )
    from threadline.threads.stores.postgres import PostgresChatMessageStore

    return PostgresChatMessageStore(
        dsn=config["dsn"], schema=config["schema"], thread_id=config["thread_id"]
    )


def crash_turn(i: int) -> list[ChatMessage]:
    """Turn ``i``: 1 to 4 messages, some of them long, each naming its turn and part."""
    size = 1 + i % 4
    pad = "x" * (37 * i % 3000)
    return [ChatMessage(Role.USER, f"{i}|{k}/{size}|{pad}") for k in range(size)]


async def main(config: dict[str, Any]) -> None:
    store = open_store(config)
    version = len(await store.list_messages())
    print("ready", flush=True)
    i = 0
    while True:
        version = await store.add_messages(crash_turn(i), expected_version=version)
        print(f"ack {i}", flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
