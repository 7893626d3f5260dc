"""Fact extraction with the embedded model: precision and recall per category (issue 21, item 3).

Runs each message of ``bench/extraction_set.json`` (the user's message and the assistant's reply
that followed) through the extraction ``UserPreferencesMemory`` uses (user statements only, the
model's JSON answer, the grounding filter) and compares the facts kept with the labels: a kept
fact is right when it contains a keyword of an expected fact, else it is a false fact. Targets:
precision >= 0.9 and recall >= 0.8 overall.

    PYTHONPATH=src python bench/extraction.py [--model qwen-0.5b] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadline.clients.base import ChatClient
from threadline.clients.local import LocalChatClient
from threadline.memory._extraction import (
    extraction_options,
    grounded,
    parse_facts,
    request_facts,
    statements,
)
from threadline.types import ChatMessage, Role

SET = Path(__file__).with_name("extraction_set.json")


@dataclass
class Score:
    expected: int = 0
    found: int = 0
    false: list[str] = field(default_factory=lambda: [])
    missed: list[str] = field(default_factory=lambda: [])

    @property
    def precision(self) -> float:
        kept = self.found + len(self.false)
        return self.found / kept if kept else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def load_items() -> list[dict[str, Any]]:
    return list(json.loads(SET.read_text())["items"])


async def extract(client: ChatClient, item: dict[str, Any]) -> list[str]:
    """The facts kept for one labelled turn, as ``UserPreferencesMemory`` would keep them."""
    messages = [
        ChatMessage(Role.USER, item["user"]),
        ChatMessage(Role.ASSISTANT, item["assistant"]),
    ]
    answer = await request_facts(client, messages, [], extraction_options())
    facts = parse_facts(answer) or []
    said = statements(messages)
    return [f.fact for f in facts if grounded(f.fact, said)]


def score(item: dict[str, Any], facts: list[str], into: Score) -> None:
    expected: list[list[str]] = item["expect"]
    into.expected += len(expected)
    matched: set[int] = set()
    for fact in facts:
        hit = next(
            (i for i, keys in enumerate(expected) if any(k in fact.lower() for k in keys)),
            None,
        )
        if hit is None:
            into.false.append(f"{item['user']!r} -> {fact!r}")
        else:
            matched.add(hit)
    into.found += len(matched)
    for i, keys in enumerate(expected):
        if i not in matched:
            into.missed.append(f"{item['user']!r}: {keys[0]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default=None, help="a named model or GGUF file (default)")
    parser.add_argument("--show", action="store_true", help="list false and missed facts")
    args = parser.parse_args()
    client = LocalChatClient(args.model)
    await client.load()
    scores: dict[str, Score] = defaultdict(Score)
    started = time.perf_counter()
    try:
        for item in load_items():
            score(item, await extract(client, item), scores[item["category"]])
    finally:
        await client.aclose()
    took = time.perf_counter() - started
    total = Score()
    print(f"model {client.model_name}, {sum(1 for _ in load_items())} messages, {took:.0f} s")
    print(f"{'category':<16} {'expected':>8} {'found':>6} {'false':>6} {'P':>6} {'R':>6}")
    for name, s in scores.items():
        print(
            f"{name:<16} {s.expected:>8} {s.found:>6} {len(s.false):>6} "
            f"{s.precision:>6.2f} {s.recall:>6.2f}"
        )
        total.expected += s.expected
        total.found += s.found
        total.false += s.false
        total.missed += s.missed
    print(
        f"{'all':<16} {total.expected:>8} {total.found:>6} {len(total.false):>6} "
        f"{total.precision:>6.2f} {total.recall:>6.2f}   (targets P >= 0.9, R >= 0.8)"
    )
    if args.show:
        for line in total.false:
            print(f"false:  {line}")
        for line in total.missed:
            print(f"missed: {line}")


if __name__ == "__main__":
    asyncio.run(main())
