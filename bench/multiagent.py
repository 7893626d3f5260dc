"""Framework overhead of a 3-agent round-robin group chat, and resume time of a long one.

Run: python bench/multiagent.py [--turns N] [--sizes 10,1000]

The models are ScriptedChatClient (instant), so what is measured is threadline's own work per
agent message: choosing the speaker, the speaker's turn on its own thread, the transcript append
and the propagation to the two other participants. The baseline is one ChatAgent turn on a thread
of the same length. Targets (issue 11): propagation costs no model call and at most one store
append per participant per message; per-message overhead within 3x of a single-agent turn and
within 2x from 10 to 1,000 messages; resume <= 50 ms at 1,000 messages.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Sequence

from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    ChatMessageList,
    GroupChat,
    MultiAgentThread,
    Role,
    ScriptedChatClient,
)

NAMES = ("writer", "editor", "critic")
REPLY = "an answer of ordinary length for a group chat turn"
MAF_MS = {10: 1.7, 1_000: 25.0}
"""Microsoft Agent Framework GroupChat, same set-up, measured on this machine (issue 11)."""


class CountingList(ChatMessageList):
    """A ChatMessageList that counts its non-empty appends."""

    appends = 0

    async def add_messages(
        self, messages: Sequence[ChatMessage], *, expected_version: int | None = None
    ) -> int:
        if messages:
            CountingList.appends += 1
        return await super().add_messages(messages, expected_version=expected_version)


def make_chat(replies: int) -> tuple[GroupChat, list[ScriptedChatClient]]:
    clients = [ScriptedChatClient([REPLY] * replies) for _ in NAMES]
    agents = [
        ChatAgent(c, f"You are the {n}.", name=n, chat_message_store_factory=CountingList)
        for n, c in zip(NAMES, clients, strict=True)
    ]
    return GroupChat(agents, max_rounds=10_000), clients


async def grown_chat(
    size: int, extra: int
) -> tuple[GroupChat, MultiAgentThread, list[ScriptedChatClient]]:
    """A chat whose transcript holds ``size`` messages (the user's first)."""
    chat, clients = make_chat(size // 3 + extra + 10)
    response = await chat.run("Write a slogan for lamps made of tree bark.", max_rounds=size - 1)
    return chat, response.thread, clients


async def group_message_us(size: int, turns: int) -> tuple[float, float, float]:
    """Median time per agent message; model calls and appends per participant per message."""
    chat, thread, clients = await grown_chat(size, turns + 5)
    for _ in range(5):
        await chat.run(thread=thread, max_rounds=1)
    gc.collect()
    calls_before = sum(len(c.calls) for c in clients)
    CountingList.appends = 0
    samples: list[float] = []
    for _ in range(turns):
        start = time.perf_counter_ns()
        await chat.run(thread=thread, max_rounds=1)
        samples.append((time.perf_counter_ns() - start) / 1000)
    calls = (sum(len(c.calls) for c in clients) - calls_before) / turns
    appends = CountingList.appends / turns / len(NAMES)
    return statistics.median(samples), calls, appends


async def single_turn_us(size: int, turns: int) -> float:
    store = ChatMessageList(
        [ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, REPLY) for i in range(size)]
    )
    agent = ChatAgent(ScriptedChatClient([REPLY] * (turns + 5)), "You are the writer.")
    thread = AgentThread(message_store=store)
    for _ in range(5):
        await agent.run("warm up", thread=thread)
    gc.collect()
    samples: list[float] = []
    for i in range(turns):
        start = time.perf_counter_ns()
        await agent.run(f"question {i}", thread=thread)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


async def resume_ms(size: int, repeats: int) -> tuple[float, float]:
    """Median serialize and restore times (ms) of a ``size``-message group chat, JSON included."""
    chat, thread, _ = await grown_chat(size, 0)
    save: list[float] = []
    load: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        text = json.dumps(await thread.serialize())
        save.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        restored = await chat.deserialize_thread(json.loads(text))
        load.append((time.perf_counter() - start) * 1000)
        assert restored.version == size
    return statistics.median(save), statistics.median(load)


async def main() -> None:
    parser = argparse.ArgumentParser(description="Group chat overhead and resume time.")
    parser.add_argument("--turns", type=int, default=200, help="measured messages per size")
    parser.add_argument("--sizes", default="10,1000", help="transcript sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=15, help="serialize/resume repeats")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'messages':>9} {'group/msg':>11} {'1 agent':>10} {'ratio':>6} "
        f"{'model calls':>12} {'appends/p':>10} {'MAF':>9}"
    )
    firsts: list[float] = []
    for size in sizes:
        group, calls, appends = await group_message_us(size, args.turns)
        single = await single_turn_us(size, args.turns)
        firsts.append(group)
        maf = f"{MAF_MS[size]:.1f} ms" if size in MAF_MS else "-"
        print(
            f"{size:>9} {group:>8.0f} us {single:>7.0f} us {group / single:>6.2f} "
            f"{calls:>12.2f} {appends:>10.2f} {maf:>9}"
        )
    if len(firsts) > 1:
        print(f"growth {sizes[0]} -> {sizes[-1]} messages: {firsts[-1] / firsts[0]:.2f}x")
    size = max(sizes)
    save, load = await resume_ms(size, args.repeats)
    print(
        f"serialize {size} messages: {save:.1f} ms; resume: {load:.1f} ms (target <= 50 ms; "
        "MAF restore+1 message: 1.8 s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
