"""Per-turn overhead of ChatAgent.run, and thread serialize+deserialize time.

Run: python bench/turn_overhead.py [--turns N] [--baseline-src PATH [--rounds R]]

The model answers at once with a constant reply and records nothing, so what is measured is
threadline's own work per turn: reading the thread, building the request, storing the turn.
(``ScriptedChatClient`` keeps a copy of every request it was sent, which on a 10,000-message
thread is a copy of the thread per call: a test double's cost, not the agent's.) Targets are from
issue 16.

``--baseline-src`` (the ``src`` of another checkout, e.g. main) measures both trees in fresh
processes, alternating R times, and prints each figure's median and range and the ratio of the
medians: on a shared machine only such a ratio from one run compares two versions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

SIZES = (10, 100, 1_000, 10_000)
HERE = Path(__file__).resolve().parent
TARGETS: dict[str, tuple[str, float]] = {
    "memory@10": ("agent.run overhead, memory, 10 messages (µs)", 15.0),
    "memory@10000": ("agent.run overhead, memory, 10,000 messages (µs)", 30.0),
    "sqlite@10000": ("durable SQLite turn, 10,000 messages (µs)", 377.0),
    "roundtrip_ms": ("serialize + deserialize, 10,000 messages (ms)", 10.0),
}
"""Issue 16's targets: each figure must be at or below its number."""


class InstantClient:
    """Answers every call at once with the same message, keeping nothing."""

    service_name = "instant"
    stores_history = False

    def __init__(self) -> None:
        from threadline import ChatMessage, ChatResponse, Role

        self._answer = ChatResponse(
            messages=(ChatMessage(Role.ASSISTANT, "an answer of ordinary length"),)
        )

    async def get_response(self, messages: Sequence[Any], *, options: Any) -> Any:
        return self._answer

    def get_streaming_response(
        self, messages: Sequence[Any], *, options: Any
    ) -> AsyncIterator[Any]:
        raise NotImplementedError


def history(n: int) -> list[Any]:
    from threadline import ChatMessage, Role

    return [
        ChatMessage(
            Role.USER if i % 2 == 0 else Role.ASSISTANT,
            f"message number {i}: a sentence of ordinary length for a chat turn.",
        )
        for i in range(n)
    ]


async def median_turn_us(make_store: Callable[[], Any], size: int, turns: int) -> float:
    from threadline import AgentThread, ChatAgent

    store = make_store()
    await store.add_messages(history(size))
    agent = ChatAgent(InstantClient(), instructions="You are a helpful assistant")
    thread = AgentThread(message_store=store)
    for _ in range(5):  # warm caches (SQLite's first read loads the history once)
        await agent.run("warm up", thread=thread)
    gc.collect()  # start each size from a clean heap, not the previous size's garbage
    samples: list[float] = []
    for i in range(turns):
        start = time.perf_counter_ns()
        await agent.run(f"question {i}", thread=thread)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


async def serialize_roundtrip_ms(size: int, repeats: int = 25) -> float:
    from threadline import AgentThread, ChatAgent, ChatMessageList

    agent = ChatAgent(InstantClient())
    thread = AgentThread(message_store=ChatMessageList(history(size)))
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        state = await thread.serialize()
        await agent.deserialize_thread(state)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples)


async def measure(turns: int) -> dict[str, float]:
    """Every figure of one run, by key (``memory@N``, ``sqlite@N``, ``roundtrip_ms``)."""
    from threadline import ChatMessageList, SQLiteChatMessageStore

    # Measured first, on a fresh heap: the turn runs below leave large heaps behind, and the
    # cyclic garbage collector's passes over them would be charged to this measurement.
    figures = {"roundtrip_ms": await serialize_roundtrip_ms(10_000)}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for n in SIZES:
            figures[f"memory@{n}"] = await median_turn_us(ChatMessageList, n, turns)
        for n in SIZES:
            figures[f"sqlite@{n}"] = await median_turn_us(
                lambda: SQLiteChatMessageStore(db), n, turns
            )
    return figures


def report(figures: dict[str, float], turns: int) -> None:
    print(f"\nChatAgent.run per-turn overhead, median of {turns} turns (µs)")
    print(f"{'history':>10} | {'memory':>9} | {'sqlite':>9}")
    print("-" * 35)
    for n in SIZES:
        print(f"{n:>10,} | {figures[f'memory@{n}']:>9.1f} | {figures[f'sqlite@{n}']:>9.1f}")
    print(f"\nserialize + deserialize, 10,000 messages: {figures['roundtrip_ms']:.1f} ms")
    print(f"\n{'target (issue 16)':<52} | {'result':>8} | met")
    print("-" * 70)
    for key, (name, limit) in TARGETS.items():
        value = figures[key]
        print(
            f"{name + f' <= {limit:g}':<52} | {value:>8.1f} | {'yes' if value <= limit else 'NO'}"
        )


def _run_tree(src: Path, turns: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, str(HERE / "turn_overhead.py"), "--turns", str(turns), "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(baseline: Path, rounds: int, turns: int) -> None:
    """Both trees in fresh processes, alternating; medians, ranges and ratios of medians."""
    runs: dict[str, list[dict[str, float]]] = {"this": [], "baseline": []}
    for r in range(rounds):
        order = (("this", HERE.parent / "src"), ("baseline", baseline))
        for name, src in order if r % 2 == 0 else reversed(order):
            runs[name].append(_run_tree(src, turns))
            print(f"  round {r} {name} done", file=sys.stderr)
    print(f"\n{rounds} alternating rounds, this tree vs {baseline} (machine shared: ratios count)")
    head = ("figure", "this median", "range", "base median", "range", "ratio")
    print(f"{head[0]:<14}{head[1]:>12}{head[2]:>18}{head[3]:>12}{head[4]:>18}{head[5]:>7}")
    for key in ["roundtrip_ms", *(f"{k}@{n}" for k in ("memory", "sqlite") for n in SIZES)]:
        this = [run[key] for run in runs["this"]]
        base = [run[key] for run in runs["baseline"]]
        tm, bm = statistics.median(this), statistics.median(base)
        print(
            f"{key:<14}{tm:>12.1f}{f'{min(this):.1f}-{max(this):.1f}':>18}"
            f"{bm:>12.1f}{f'{min(base):.1f}-{max(base):.1f}':>18}{tm / bm:>7.2f}"
        )
    medians = {k: statistics.median(run[k] for run in runs["this"]) for k in runs["this"][0]}
    report(medians, turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--baseline-src", metavar="PATH", help="compare with this source tree")
    parser.add_argument("--rounds", type=int, default=5, help="alternations with --baseline-src")
    args = parser.parse_args()
    if args.baseline_src:
        compare(Path(args.baseline_src), args.rounds, args.turns)
        return
    figures = asyncio.run(measure(args.turns))
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures, args.turns)


if __name__ == "__main__":
    main()
