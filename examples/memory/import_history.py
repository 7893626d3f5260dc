"""Import existing conversations in bulk, then search them: ``ingest`` and ``recall``.

Each message keeps its id, so a hit points back at the exact messages it came from; dates are when
the conversation happened. Each turn is indexed with the message before it and the date, so a
short answer ("Yes, it was great!") is found by what it answered.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from threadline import ChatMessage, ConversationMemory, InMemoryMemoryStore, Role

HISTORY = {
    ("s1", datetime(2023, 5, 20, 14, 0)): [
        ("user", "Did you like the Vermeer exhibition in Amsterdam?"),
        ("assistant", "Yes, it was great! The Milkmaid was the highlight."),
    ],
    ("s2", datetime(2023, 6, 2, 9, 30)): [
        ("user", "I adopted a beagle called Biscuit."),
        ("assistant", "Congratulations on Biscuit!"),
    ],
}


async def main() -> None:
    memory = ConversationMemory(InMemoryMemoryStore())  # or SQLiteMemoryStore(path): durable
    for (session, when), turns in HISTORY.items():
        messages = [
            ChatMessage(Role(role), text, message_id=f"{session}-{i}")
            for i, (role, text) in enumerate(turns)
        ]
        await memory.ingest(messages, user_id="alice", thread_id=session, occurred_at=when)

    for question in ("What did I think of the exhibition?", "What is my beagle called?"):
        [best, *_] = await memory.recall(question, user_id="alice", limit=3)
        when = f"{best.occurred_at:%Y-%m-%d}" if best.occurred_at else "?"
        print(f"{question} -> {best.thread_id} {list(best.message_ids)} {when}")


if __name__ == "__main__":
    asyncio.run(main())
