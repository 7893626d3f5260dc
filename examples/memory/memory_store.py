"""Long-term memory with a store directly: remember facts of two users, search, supersede, forget.

Runs offline. With the memory extra installed (pip install 'threadline[memory]') search is
semantic as well as lexical; without it, lexical (BM25) only.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from threadline.memory import MemoryRecord, MemoryScope, SQLiteMemoryStore, default_embedder


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Default path: memory.sqlite3 under $THREADLINE_HOME; here a throwaway file.
        store = SQLiteMemoryStore(Path(tmp) / "memory.sqlite3", embedder=default_embedder())
        ada, bob = MemoryScope(user_id="ada"), MemoryScope(user_id="bob")
        old = MemoryRecord(kind="preference", text="I am vegetarian", scope=ada)
        await store.add(
            [
                old,
                MemoryRecord(
                    kind="turn",
                    text="user: We hiked up to the glacier lagoon in Iceland!",
                    scope=ada,
                    thread_id="thread-1",
                    message_ids=("msg-1",),
                    occurred_at=datetime(2024, 3, 14, tzinfo=UTC),
                ),
                MemoryRecord(kind="preference", text="I am vegetarian", scope=bob),
            ]
        )
        for hit in await store.search("what did I do in March 2024?", scope=ada, limit=1):
            print(f"{hit.occurred_at:%Y-%m-%d} {hit.text!r} from {hit.thread_id}")

        # A newer fact supersedes the old one, which is kept for audit.
        await store.add([MemoryRecord(kind="preference", text="I am vegan now", scope=ada)])
        await store.supersede(old.id, scope=ada, valid_to=datetime.now(UTC))
        print([r.text for r in await store.list(scope=ada, kinds=["preference"])])

        # Forget everything about ada; bob's identical fact stays.
        print("forgot", (await store.forget(user_id="ada")).records, "memories of ada")
        print([r.text for r in await store.list(scope=bob)])
        await store.aclose()


asyncio.run(main())
