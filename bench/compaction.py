"""Compaction with the embedded model: a long chat that outgrows the window, with and without.

One chat, the same for both arms: turn 1 gives a name and a city, then short questions on
rotating topics, then "What is my name, and which city do I live in?". Measured with the real
default model (qwen-0.5b, greedy sampling):

* without compaction: the turn at which turn 1 first falls out of what the model is sent (the
  client's window cut drops it silently: today's first failure; a call that raises counts too),
  prompt tokens per call until then, and whether the final question is answered. This arm stops
  at its first cut: the turns after it would only repeat the loss;
* with ``Compaction()`` (the default budget from the window): compactions made and how (model or
  extractive fallback), time per compaction (the summary's model call; the turn's total too),
  tokens per call (the prompt tokens llama.cpp reported, median and max, against the window),
  window cuts (calls where the client still had to drop messages: should be 0), failures, and
  whether the final question is answered (name and city).

    PYTHONPATH=src python bench/compaction.py [--ctx 640] [--turns 30] [--max-tokens 48]
        [--arm both|without|with] [--temperature 0]

The defaults run in minutes. The issue's run is ``--ctx 8192 --max-tokens 512 --turns 300``
(``threadline chat``'s own window and reply limit); it took 8 to 11 minutes per arm on a busy
2-core machine (docs/threads.md). Each turn is reported on stderr as it ends (turn, seconds,
prompt tokens, compaction), so a long run can be followed with ``nohup ... 2>bench.log &``; the
result is one JSON document on stdout.

Figures swing on a busy machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from threadline import ChatAgent, ChatMessage, Compaction, RunOptions
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


def progress(arm: str, turn: int, last: int, line: str) -> None:
    """One line per turn on stderr, flushed: a long run in the background can be followed."""
    print(f"[{arm}] turn {turn}/{last} {line}", file=sys.stderr, flush=True)


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


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """Median, min and max (rounded): the figures a noisy machine allows."""
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


async def without_compaction(
    client: LocalChatClient, turns: int, options: RunOptions
) -> dict[str, object]:
    agent = ChatAgent(client, INSTRUCTIONS, default_options=options)
    thread = agent.get_new_thread()
    assert thread.message_store is not None
    prompt_tokens: list[int] = []
    seconds: list[float] = []
    first_id: str | None = None
    dropped_at = None
    failed_at = None
    for turn in range(1, turns + 1):
        start = time.perf_counter()
        try:
            reply = await agent.run(FIRST if turn == 1 else filler(turn), thread=thread)
        except Exception as exc:  # today's first failure, if the window cut does not come first
            failed_at = turn
            progress("without", turn, turns, f"failed: {exc!r}")
            break
        seconds.append(time.perf_counter() - start)
        if reply.usage is not None and reply.usage.input_token_count is not None:
            prompt_tokens.append(reply.usage.input_token_count)
        if first_id is None:
            first_id = (await thread.message_store.list_messages())[0].message_id
        cut = all(m.message_id != first_id for m in client.last_sent)
        progress(
            "without",
            turn,
            turns,
            f"{seconds[-1]:.1f}s prompt={prompt_tokens[-1] if prompt_tokens else '?'}"
            + (" CUT: turn 1 no longer sent" if cut else ""),
        )
        if cut:
            dropped_at = turn
            break
    reply = await agent.run(QUESTION, thread=thread)
    return {
        "turn_1_dropped_at_turn": dropped_at,
        "failed_at_turn": failed_at,
        "turn_s": spread(seconds),
        "prompt_tokens": spread(prompt_tokens),
        "final_answer": reply.text,
        "answered": answered(reply.text),
    }


async def with_compaction(
    client: LocalChatClient, turns: int, options: RunOptions
) -> dict[str, object]:
    timed = TimedSummarizer(client)
    agent = ChatAgent(
        client, INSTRUCTIONS, compaction=Compaction(summarizer=timed), default_options=options
    )
    thread = agent.get_new_thread()
    assert thread.message_store is not None
    store = thread.message_store
    prompt_tokens: list[int] = []
    compaction_turns: list[float] = []
    other_turns: list[float] = []
    compactions: list[dict[str, object]] = []
    cuts = 0
    failures = 0
    summaries_before = 0
    last = turns + 1
    for turn in range(1, last + 1):
        text = FIRST if turn == 1 else QUESTION if turn == last else filler(turn)
        calls_before = len(timed.seconds)
        start = time.perf_counter()
        try:
            reply = await agent.run(text, thread=thread)
        except Exception as exc:  # counted: the bar is zero
            failures += 1
            progress("with", turn, last, f"failed: {exc!r}")
            continue
        took = time.perf_counter() - start
        stored = await store.list_messages()
        summaries = [m for m in stored if summary_mark(m) is not None]
        compacted = len(summaries) > summaries_before
        (compaction_turns if compacted else other_turns).append(took)
        summaries_before = len(summaries)
        tokens = None
        if reply.usage is not None and reply.usage.input_token_count is not None:
            tokens = reply.usage.input_token_count
            prompt_tokens.append(tokens)
        sent = {m.message_id for m in client.last_sent}
        view = compacted_view(stored[: -len(reply.messages)] if reply.messages else stored)
        cut = any(m.message_id not in sent for m in view)
        cuts += cut
        note = ""
        if compacted:
            mark = summary_mark(summaries[-1])
            assert mark is not None
            summary_s = sum(timed.seconds[calls_before:])
            compactions.append(
                {
                    "turn": turn,
                    "method": mark.method,
                    "replaces": len(mark.replaces),
                    "summary_call_s": round(summary_s, 2),
                    "turn_s": round(took, 2),
                    "prompt_tokens_after": tokens,
                }
            )
            note = f" COMPACTED ({mark.method}, {len(mark.replaces)} messages, {summary_s:.1f}s)"
        progress(
            "with",
            turn,
            last,
            f"{took:.1f}s prompt={tokens}{note}{' CUT' if cut else ''}",
        )
    stored = await store.list_messages()
    summaries = [m for m in stored if summary_mark(m) is not None]
    methods = [mark.method for m in summaries if (mark := summary_mark(m)) is not None]
    return {
        "turns": last,
        "stored_messages": len(stored),
        "compactions": len(summaries),
        "methods": {m: methods.count(m) for m in set(methods) if m},
        "each_compaction": compactions,
        "summary_call_s": spread(timed.seconds),
        "compaction_turn_s": spread(compaction_turns),
        "other_turn_s": spread(other_turns),
        "prompt_tokens": spread(prompt_tokens),
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
    parser.add_argument(
        "--arm",
        choices=["both", "without", "with"],
        default="both",
        help="run both arms (default), or only the one without or with compaction",
    )
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature (0: greedy)"
    )
    args = parser.parse_args()
    if args.turns < 2:
        parser.error(f"--turns must be at least 2, got {args.turns}")
    client = LocalChatClient(n_ctx=args.ctx, max_tokens=args.max_tokens)
    options = RunOptions(temperature=args.temperature)
    settings = {
        "n_ctx": args.ctx,
        "max_tokens": args.max_tokens,
        "turns": args.turns,
        "temperature": args.temperature,
        "compaction_budget": Compaction().budget(client, options),
    }
    result: dict[str, object] = {"settings": settings}
    try:
        start = time.perf_counter()
        if args.arm in ("both", "without"):
            result["without"] = await without_compaction(client, args.turns, options)
        if args.arm in ("both", "with"):
            result["with"] = await with_compaction(client, args.turns, options)
        result["seconds"] = round(time.perf_counter() - start, 1)
    finally:
        client.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
