"""Compaction with the embedded model: a long chat that outgrows the window, with and without.

One chat, the same for both runs: turn 1 gives a name and a city, then short questions on
rotating topics, then "What is my name, and which city do I live in?". Measured with the real
default model (qwen-0.5b, greedy sampling) and a small window so it runs in a few minutes here:

* without compaction: the turn at which turn 1 first falls out of what the model is sent (the
  client's window cut drops it silently), and whether the final question is answered;
* with ``Compaction()`` (the default budget from the window): compactions made and how (model or
  extractive fallback), time per compaction (the summary's model call; the turn's total too),
  tokens per call (the prompt tokens llama.cpp reported, median and max, against the window),
  window cuts (calls where the client still had to drop messages: should be 0), failures, and
  whether the final question is answered (name and city).

    PYTHONPATH=src python bench/compaction.py [--ctx 640] [--turns 30] [--max-tokens 48]

Figures swing on a busy machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from threadline import ChatAgent, ChatMessage, Compaction
from threadline.clients.base import ChatOptions
from threadline.clients.local import LocalChatClient
from threadline.compaction import compacted_view, summary_mark
from threadline.types import ChatResponse, ChatResponseUpdate

INSTRUCTIONS = "You are a helpful assistant. Answer in one short sentence."
FIRST = "Hello! My name is Alice and I live in Lyon."
TOPICS = ["the moon", "tea", "trains", "rivers", "bread", "owls", "glass", "chess", "salt", "ice"]
QUESTION = "What is my name, and which city do I live in?"


def filler(turn: int) -> str:
    return f"Tell me one fact about {TOPICS[turn % len(TOPICS)]}, in simple words, please."


@dataclass
class TimedSummarizer:
    """The agent's own model as the summarizer, timed: a ChatClient delegating to it."""

    client: LocalChatClient
    seconds: list[float] = field(default_factory=lambda: [])

    @property
    def service_name(self) -> str:
        return self.client.service_name

    @property
    def stores_history(self) -> bool:
        return False

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        start = time.perf_counter()
        try:
            return await self.client.get_response(messages, options=options)
        finally:
            self.seconds.append(time.perf_counter() - start)

    def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        return self.client.get_streaming_response(messages, options=options)


def answered(text: str) -> dict[str, bool]:
    return {"name": "alice" in text.lower(), "city": "lyon" in text.lower()}


async def without_compaction(client: LocalChatClient, turns: int) -> dict[str, object]:
    agent = ChatAgent(client, INSTRUCTIONS)
    thread = agent.get_new_thread()
    await agent.run(FIRST, thread=thread)
    first_id = None
    dropped_at = None
    assert thread.message_store is not None
    first_id = (await thread.message_store.list_messages())[0].message_id
    for turn in range(2, turns + 1):
        await agent.run(filler(turn), thread=thread)
        if all(m.message_id != first_id for m in client.last_sent):
            dropped_at = turn
            break
    reply = await agent.run(QUESTION, thread=thread)
    return {
        "turn_1_dropped_at_turn": dropped_at,
        "final_answer": reply.text,
        "answered": answered(reply.text),
    }


async def with_compaction(client: LocalChatClient, turns: int) -> dict[str, object]:
    timed = TimedSummarizer(client)
    agent = ChatAgent(client, INSTRUCTIONS, compaction=Compaction(summarizer=timed))
    thread = agent.get_new_thread()
    assert thread.message_store is not None
    store = thread.message_store
    prompt_tokens: list[int] = []
    compaction_turns: list[float] = []
    other_turns: list[float] = []
    cuts = 0
    failures = 0
    summaries_before = 0
    for turn in range(1, turns + 2):
        text = FIRST if turn == 1 else QUESTION if turn == turns + 1 else filler(turn)
        start = time.perf_counter()
        try:
            reply = await agent.run(text, thread=thread)
        except Exception as exc:  # counted: the bar is zero
            failures += 1
            print(f"turn {turn} failed: {exc!r}")
            continue
        took = time.perf_counter() - start
        stored = await store.list_messages()
        summaries = [m for m in stored if summary_mark(m) is not None]
        (compaction_turns if len(summaries) > summaries_before else other_turns).append(took)
        summaries_before = len(summaries)
        if reply.usage is not None and reply.usage.input_token_count is not None:
            prompt_tokens.append(reply.usage.input_token_count)
        sent = {m.message_id for m in client.last_sent}
        view = compacted_view(stored[: -len(reply.messages)] if reply.messages else stored)
        if any(m.message_id not in sent for m in view):
            cuts += 1
    stored = await store.list_messages()
    summaries = [m for m in stored if summary_mark(m) is not None]
    methods = [mark.method for m in summaries if (mark := summary_mark(m)) is not None]
    return {
        "turns": turns + 1,
        "stored_messages": len(stored),
        "compactions": len(summaries),
        "methods": {m: methods.count(m) for m in set(methods) if m},
        "summary_call_s_median": statistics.median(timed.seconds) if timed.seconds else None,
        "compaction_turn_s_median": statistics.median(compaction_turns)
        if compaction_turns
        else None,
        "other_turn_s_median": statistics.median(other_turns) if other_turns else None,
        "prompt_tokens_median": statistics.median(prompt_tokens) if prompt_tokens else None,
        "prompt_tokens_max": max(prompt_tokens) if prompt_tokens else None,
        "window_cuts": cuts,
        "failures": failures,
        "latest_summary": summaries[-1].text if summaries else None,
        "final_answer": stored[-1].text,
        "answered": answered(stored[-1].text),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description="A long chat with and without compaction.")
    parser.add_argument("--ctx", type=int, default=640, help="the model's window (640)")
    parser.add_argument("--turns", type=int, default=30, help="turns before the question (30)")
    parser.add_argument("--max-tokens", type=int, default=48, help="reply tokens (48)")
    args = parser.parse_args()
    client = LocalChatClient(n_ctx=args.ctx, max_tokens=args.max_tokens)
    options = {"n_ctx": args.ctx, "max_tokens": args.max_tokens, "turns": args.turns}
    try:
        start = time.perf_counter()
        before = await without_compaction(client, args.turns)
        after = await with_compaction(client, args.turns)
        elapsed = time.perf_counter() - start
    finally:
        client.close()
    result = {"settings": options, "without": before, "with": after, "seconds": elapsed}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
