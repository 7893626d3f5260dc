"""The real-conversation half of ``bench/memory.py``: LoCoMo through ``ConversationMemory``.

Every figure goes through ``ConversationMemory``'s public ``ingest``/``recall`` with the metric of
``_locomo``. One table per lever: indexing levers are measured lexically (no embedder, seconds),
ranking levers on one store ingested with embeddings. Recall latency and ingest rate are measured
on the same data (the machine may be shared: read them as rough figures).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _locomo import Conversation, Tally, load, print_header, print_row
from threadline.memory import ConversationMemory, Embedder, SQLiteMemoryStore
from threadline.memory.stores import Fusion

__all__ = ["locomo"]


async def _ingest(
    path: Path,
    conversations: Sequence[Conversation],
    embedder: Embedder | None,
    *,
    context_messages: int = 2,
    speaker_names: bool = True,
) -> float:
    """Ingest every session; returns turns per second."""
    store = SQLiteMemoryStore(path, embedder=embedder)
    memory = ConversationMemory(store)
    memory._context_messages = context_messages
    memory._speaker_names = speaker_names
    started = time.perf_counter()
    turns = 0
    for conversation in conversations:
        for session in conversation.sessions:
            turns += await memory.ingest(
                session.messages,
                user_id=conversation.user_id,
                thread_id=session.thread_id,
                occurred_at=session.occurred_at,
            )
    rate = turns / (time.perf_counter() - started)
    await store.aclose()
    return rate


async def _ask(
    path: Path,
    conversations: Sequence[Conversation],
    embedder: Embedder | None,
    fusion: Fusion | None = None,
    *,
    per_user_statistics: bool = False,
) -> tuple[Tally, list[float]]:
    store = SQLiteMemoryStore(
        path, embedder=embedder, fusion=fusion, per_user_statistics=per_user_statistics
    )
    memory = ConversationMemory(store)
    tally = Tally()
    timings: list[float] = []
    for conversation in conversations:
        for question in conversation.questions:
            started = time.perf_counter()
            hits = await memory.recall(question.text, user_id=conversation.user_id, limit=10)
            timings.append((time.perf_counter() - started) * 1000)
            tally.add(question, hits)
    await store.aclose()
    return tally, timings


async def locomo(path: Path, embedder: Embedder, work: Path) -> None:
    """Print the LoCoMo tables for the file at ``path``."""
    conversations = load(path)
    questions = sum(len(c.questions) for c in conversations)
    turns = sum(c.turns for c in conversations)
    print(
        f"real conversations: {path.name}, {len(conversations)} conversations, {turns:,} turns, "
        f"{questions} questions (LoCoMo, Maharana et al., ACL 2024, CC BY-NC 4.0)"
    )
    lexical = work / "locomo-lexical.db"
    await _ingest(lexical, conversations, None)
    vectors = work / "locomo-vectors.db"
    rate = await _ingest(vectors, conversations, embedder)
    default, timings = await _ask(vectors, conversations, embedder)
    chars = sum(len(m.text) for c in conversations for s in c.sessions for m in s.messages)
    print_header("the default, and without vectors")
    print_row("default (BM25 + MiniLM, weights 1/0.3)", default)
    print_row("lexical only (no embedder)", (await _ask(lexical, conversations, None))[0])
    print(
        f"    recall p50 {statistics.median(timings):.1f} ms over {len(timings)} questions; "
        f"ingest with embeddings {rate:,.0f} turns/s (mean turn "
        f"{chars / turns:.0f} chars)"
    )
    print_header("lever: previous messages indexed with each turn (lexical)")
    for count in (0, 1, 2, 3):
        db = work / f"locomo-context{count}.db"
        await _ingest(db, conversations, None, context_messages=count)
        print_row(f"{count} previous messages", (await _ask(db, conversations, None))[0])
    print_header("lever: BM25 statistics of the whole file or of each user (lexical)")
    for per_user in (False, True):
        tally, times = await _ask(lexical, conversations, None, per_user_statistics=per_user)
        label = "each user's (per_user_statistics)" if per_user else "the file's (FTS5 bm25)"
        print_row(f"{label}, p50 {statistics.median(times):.0f} ms", tally)
    print_header("lever: speakers' names instead of roles (lexical)")
    db = work / "locomo-roles.db"
    await _ingest(db, conversations, None, speaker_names=False)
    print_row("roles ('user:')", (await _ask(db, conversations, None))[0])
    print_row("names ('Caroline:')", (await _ask(lexical, conversations, None))[0])
    levers: list[tuple[str, str, Callable[[float], Fusion], tuple[float, ...]]] = [
        ("vector weight (standardised score fusion)", "lexical 1.0 / vector",
         lambda v: Fusion(vector_weight=v), (0.0, 0.3, 0.5, 1.0)),
        ("penalty for a hit repeating a better hit's message", "repeat penalty",
         lambda v: Fusion(repeat_penalty=v), (0.5, 0.9, 1.0)),
        ("the named speaker's own words first (bonus to the fused score)", "named speaker bonus",
         lambda v: Fusion(named_speaker_bonus=v), (0.0, 0.5, 1.0, 2.0)),
    ]  # fmt: skip
    for title, label, fusion_of, values in levers:
        print_header(f"lever: {title}")
        for value in values:
            tally, _ = await _ask(vectors, conversations, embedder, fusion_of(value))
            print_row(f"{label} {value}", tally)
    print_header("lever: the user's words first, past assistant replies weigh less")
    assistant = work / "locomo-assistant.db"
    split = load(path, speaker_roles="user-assistant")
    await _ingest(assistant, split, embedder)
    for label, convs, db in (
        ("both users", conversations, vectors),
        ("B assistant", split, assistant),
    ):
        for first, weight in ((False, 1.0), (False, 0.85), (True, 0.85)):
            fusion = Fusion(assistant_weight=weight, user_words_first=first)
            print_row(
                f"{label}: words first {'on' if first else 'off'}, aw {weight}",
                (await _ask(db, convs, embedder, fusion))[0],
            )
    print("  targets (development half): session R@5 >= 0.95, turn R@10 >= 0.80")
