"""A 10-turn chat with and without memory: first-token time per turn (issue 21, item 1).

The chat is set up as ``threadline chat`` sets it up (``memory_cmd.chat_memory``: facts pinned in
the thread's instructions at its first call, each relevant past turn once as a background
message before the newest input, the chat's own model extracting facts between turns), on a memory
store seeded with an earlier conversation and three facts, so recall has something to find.
Between turns the script waits ``pause`` seconds, as a user typing would; the background
extraction of the previous turn runs then, and the first token is timed from sending the
message. ``--instructions`` also runs the old placement (memories recalled into the system
message for every call). The seeded store is small: after a few turns every past turn has been
shown once, so later turns add nothing; a long memory keeps finding new turns to add.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from threadline.agents.chat_agent import ChatAgent
from threadline.cli import memory_cmd
from threadline.clients.local import LocalChatClient
from threadline.memory import ConversationMemory, UserPreferencesMemory, open_memory_store
from threadline.memory.preferences import ExtractedFact
from threadline.threads.thread import AgentThread
from threadline.types import ChatMessage, Role

INSTRUCTIONS = "You are a helpful assistant. Answer clearly and briefly."
USER = "ada"
QUESTIONS = (
    "Hi! Can you suggest a quick dinner for tonight?",
    "What could I bring to a picnic on Saturday?",
    "How long does it take to walk across Porto's old town?",
    "Give me a tip for sleeping better.",
    "What is a good snack for a long train ride?",
    "Suggest a book for a rainy weekend.",
    "How do I keep basil alive on a windowsill?",
    "What should I pack for a weekend in the mountains?",
    "Any idea for a birthday present for my sister?",
    "Thanks! One last thing: what should I cook on Sunday?",
)
PAST = (
    "I'm vegetarian and I live in Porto.",
    "Nice! Porto has great vegetarian places.",
    "I'm allergic to peanuts, so I always check labels.",
    "Good habit; many snacks contain peanuts.",
    "My sister Lena turns 30 next month.",
    "A round birthday! Do you have plans?",
)
FACTS = (
    ExtractedFact("diet", "The user is vegetarian.", "preference"),
    ExtractedFact("home_city", "The user lives in Porto.", "fact"),
    ExtractedFact("allergy", "The user is allergic to peanuts.", "fact"),
)


async def _first_token(agent: ChatAgent, thread: AgentThread, text: str, max_tokens: int) -> float:
    start = time.perf_counter()
    first = 0.0
    async for update in agent.run_stream(text, thread=thread, max_tokens=max_tokens):
        if update.text and not first:
            first = time.perf_counter() - start
    return first


async def _chat(
    client: LocalChatClient, home: Path | None, placement: str, pause: float, max_tokens: int
) -> list[float]:
    providers = []
    store = None
    if home is not None:
        store = open_memory_store(home / "memory.sqlite3")
        providers = memory_cmd.chat_memory(store, client)
        if placement == "instructions":
            providers = [
                ConversationMemory(store, limit=3),
                UserPreferencesMemory(
                    store, extractor=client, extraction_timeout=120.0, tools=False
                ),
            ]
        past = [
            ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, text)
            for i, text in enumerate(PAST)
        ]
        await ConversationMemory(store).ingest(past, user_id=USER, thread_id="thread_past")
        await UserPreferencesMemory(store).add_facts(FACTS, user_id=USER)
    agent = ChatAgent(client, INSTRUCTIONS, context_providers=providers)
    thread = agent.get_new_thread(user_id=USER)
    times: list[float] = []
    try:
        for question in QUESTIONS:
            times.append(await _first_token(agent, thread, question, max_tokens))
            await asyncio.sleep(pause)
    finally:
        for provider in providers:
            if isinstance(provider, UserPreferencesMemory):
                await provider.wait_pending()
        if store is not None:
            await store.aclose()
    return times


async def chat_memory_bench(
    *, pause: float, max_tokens: int, instructions: bool, model: str | None = None
) -> None:
    """Print first-token times per turn without memory, with it, and the median ratio."""
    client = LocalChatClient(model)
    await client.load()
    await _first_token(ChatAgent(client), AgentThread(), "Hello", 4)  # warm up
    try:
        rows: dict[str, list[float]] = {}
        rows["no memory"] = await _chat(client, None, "chat", pause, max_tokens)
        placements = ["chat", "instructions"] if instructions else ["chat"]
        for placement in placements:
            with tempfile.TemporaryDirectory() as folder:
                rows[f"memory ({placement})"] = await _chat(
                    client, Path(folder), placement, pause, max_tokens
                )
    finally:
        await client.aclose()
    print(
        f"model {client.model_name}, {client.n_threads} threads, pause {pause:.0f} s, "
        f"replies <= {max_tokens} tokens; first-token time per turn (s)"
    )
    for name, times in rows.items():
        cells = " ".join(f"{t:5.2f}" for t in times)
        print(f"{name:<24} {cells}   median {statistics.median(times):.2f}")
    base = statistics.median(rows["no memory"])
    for name, times in rows.items():
        if name != "no memory":
            ratio = statistics.median(times) / base
            verdict = "yes" if ratio <= 1.5 else "NO"
            print(f"median ratio {name} / no memory: {ratio:.2f}x (target <= 1.5x: {verdict})")
