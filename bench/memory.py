"""Benchmark of long-term memory: retrieval quality and latency (issue 8).

Run: ``PYTHONPATH=src python bench/memory.py``. First the real conversations: a LoCoMo-shaped
file (``--locomo PATH``; default the development half in ``../shared/data/locomo-dev/`` when
present), one table per lever (``_locomo_run``); then the synthetic set (full size: 20 users x
20 sessions x 15 turns, and 100,000 stored turns for latency; tens of minutes on 2 cores,
mostly embedding). For a quick
check: ``--users 3 --sessions 6 --latency-turns 3000 --ingest-turns 200``.

Quality: the synthetic conversations of ``_memory_data`` are ingested per user, and each
question is recalled (limit 10) in that user's scope. Turn-level recall@k: an evidence message id
is among the ``message_ids`` of the first k hits; session-level: a hit of the first k comes from
an evidence session. Rows: BM25 over single turns (the baseline), BM25 over turns indexed with
their previous turn and the session date, MiniLM embeddings alone over the same, and the default
fusion. ``make_backend`` is the one place that decides how memory is driven: through the store
directly, or through ``ConversationMemory().ingest/recall`` when that exists.

Latency: a SQLite store with embeddings is filled to ``--latency-turns`` turns; search is then
timed with real query embeddings (p50/p95, including embedding the query). To fill 100,000 turns
in minutes rather than an hour on a small machine, only the first ``--fill-distinct`` texts are
embedded for real and later ones reuse those vectors: search cost does not depend on the vectors'
values. Ingest throughput is measured separately, on a fresh store, with every turn embedded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# The script's folder is on sys.path when run as `python bench/memory.py`.
from _locomo import DEFAULT_FILE
from _locomo_run import locomo
from _memory_data import Question, Session, generate
from threadline.memory import (
    ConversationMemory,
    Embedder,
    MemoryHit,
    MemoryRecord,
    MemoryScope,
    MiniLMEmbedder,
    SQLiteMemoryStore,
)
from threadline.memory.stores import Fusion
from threadline.threads import AgentThread
from threadline.types import ChatMessage, Role

EMBEDDINGS_ONLY = Fusion(lexical_weight=0.0, recency_weight=0.0, time_weight=0.0)


class Backend(Protocol):
    async def ingest(self, session: Session) -> None: ...
    async def recall(self, question: Question, limit: int) -> list[MemoryHit]: ...
    async def aclose(self) -> None: ...


def turn_records(session: Session, *, context: bool) -> list[MemoryRecord]:
    """A session's turns as memory records; with ``context``, each carries its previous turn and
    the session date (what the issue measured to help most)."""
    scope = MemoryScope(user_id=session.user_id)
    day = session.occurred_at.strftime("%A, %d %B %Y")
    records: list[MemoryRecord] = []
    for i, turn in enumerate(session.turns):
        text, ids = f"{turn.role}: {turn.text}", (turn.message_id,)
        if context:
            if i > 0:
                previous = session.turns[i - 1]
                text = f"{previous.role}: {previous.text}\n{text}"
                ids = (previous.message_id, turn.message_id)
            text = f"[{day}]\n{text}"
        records.append(
            MemoryRecord(
                kind="turn",
                text=text,
                scope=scope,
                thread_id=session.thread_id,
                message_ids=ids,
                occurred_at=session.occurred_at,
            )
        )
    return records


@dataclass
class StoreBackend:
    """Memory driven through a store directly."""

    store: SQLiteMemoryStore
    context: bool

    async def ingest(self, session: Session) -> None:
        await self.store.add(turn_records(session, context=self.context))

    async def recall(self, question: Question, limit: int) -> list[MemoryHit]:
        scope = MemoryScope(user_id=question.user_id)
        return await self.store.search(question.text, scope=scope, limit=limit)

    async def aclose(self) -> None:
        await self.store.aclose()


@dataclass
class ConversationMemoryBackend:
    """Memory driven through ``ConversationMemory().ingest/recall``, as users (and the held-out
    benchmark) drive it; it builds its own turn records from the messages."""

    memory: Any
    store: SQLiteMemoryStore

    async def ingest(self, session: Session) -> None:
        messages = [ChatMessage(t.role, t.text, message_id=t.message_id) for t in session.turns]
        await self.memory.ingest(
            messages,
            user_id=session.user_id,
            thread_id=session.thread_id,
            occurred_at=session.occurred_at,
        )

    async def recall(self, question: Question, limit: int) -> list[MemoryHit]:
        return list(await self.memory.recall(question.text, user_id=question.user_id, limit=limit))

    async def aclose(self) -> None:
        await self.store.aclose()


def make_backend(
    path: Path,
    *,
    embedder: Embedder | None,
    context: bool,
    fusion: Fusion | None = None,
    via: str = "store",
) -> Backend:
    """The one switch between driving the store and driving ``ConversationMemory`` (``via``)."""
    store = SQLiteMemoryStore(path, embedder=embedder, fusion=fusion)
    if via == "conversation" and context:
        import threadline.memory

        conversation_memory = getattr(threadline.memory, "ConversationMemory", None)
        if conversation_memory is None:
            raise SystemExit("--via conversation needs ConversationMemory (issue 8 components)")
        memory = conversation_memory(store, embedder=embedder)
        return ConversationMemoryBackend(memory, store)
    return StoreBackend(store, context)


@dataclass
class Scores:
    turn: dict[int, float]
    session: dict[int, float]
    temporal_session5: float


async def evaluate(backend: Backend, questions: Sequence[Question]) -> Scores:
    ks = (1, 5, 10)
    turn = dict.fromkeys(ks, 0)
    session = dict.fromkeys(ks, 0)
    temporal_hits = temporal_total = 0
    for q in questions:
        hits = await backend.recall(q, 10)
        for k in ks:
            top = hits[:k]
            turn[k] += any(q.evidence.intersection(h.message_ids) for h in top)
            session[k] += any(h.thread_id in q.threads for h in top)
        if q.temporal:
            temporal_total += 1
            temporal_hits += any(h.thread_id in q.threads for h in hits[:5])
    n = max(1, len(questions))
    return Scores(
        {k: v / n for k, v in turn.items()},
        {k: v / n for k, v in session.items()},
        temporal_hits / max(1, temporal_total),
    )


class ReusedVectors:
    """MiniLM, except that while ``reuse`` is on, texts after ``distinct`` of them reuse vectors."""

    def __init__(self, real: MiniLMEmbedder, distinct: int) -> None:
        self.real, self.distinct, self.reuse = real, distinct, True
        self.dimension, self.name = real.dimension, real.name
        self._made: list[list[float]] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.reuse:
            return await self.real.embed(texts)
        fresh = max(0, min(len(texts), self.distinct - len(self._made)))
        if fresh:
            self._made += await self.real.embed(texts[:fresh])
        made = self._made
        return made[len(made) - fresh :] + [made[i % len(made)] for i in range(len(texts) - fresh)]


def _size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


async def quality(args: argparse.Namespace, embedder: MiniLMEmbedder, work: Path) -> None:
    sessions, questions = generate(users=args.users, sessions=args.sessions, turns=args.turns)
    print(
        f"quality: {args.users} users x {args.sessions} sessions x {args.turns} turns = "
        f"{sum(len(s.turns) for s in sessions):,} turns, {len(questions)} questions "
        f"({sum(q.temporal for q in questions)} temporal)"
    )
    single = make_backend(work / "single.db", embedder=None, context=False)
    for session in sessions:
        await single.ingest(session)
    with_vectors = make_backend(work / "context.db", embedder=embedder, context=True, via=args.via)
    started = time.perf_counter()
    for session in sessions:
        await with_vectors.ingest(session)
    print(f"  ingested with embeddings in {time.perf_counter() - started:.1f}s")
    rows: list[tuple[str, Backend]] = [
        ("BM25, single turns", single),
        (
            "BM25, turn + previous + date",
            make_backend(work / "context.db", embedder=None, context=True, via=args.via),
        ),
        (
            "embeddings only (MiniLM)",
            make_backend(
                work / "context.db",
                embedder=embedder,
                context=True,
                fusion=EMBEDDINGS_ONLY,
                via=args.via,
            ),
        ),
        ("default fusion", with_vectors),
    ]
    for weights in args.fusion:
        lex, vec, rec = (float(w) for w in weights.split(","))
        fusion = Fusion(lexical_weight=lex, vector_weight=vec, recency_weight=rec)
        backend = make_backend(
            work / "context.db", embedder=embedder, context=True, fusion=fusion, via=args.via
        )
        rows.append((f"fusion {lex:g}/{vec:g}/{rec:g}", backend))
    print(
        f"  {'retrieval':32} {'turn R@1':>8} {'R@5':>6} {'R@10':>6} | "
        f"{'sess R@1':>8} {'R@5':>6} {'R@10':>6} | temporal sess R@5"
    )
    for label, backend in rows:
        s = await evaluate(backend, questions)
        print(
            f"  {label:32} {s.turn[1]:8.3f} {s.turn[5]:6.3f} {s.turn[10]:6.3f} | "
            f"{s.session[1]:8.3f} {s.session[5]:6.3f} {s.session[10]:6.3f} | "
            f"{s.temporal_session5:.3f}"
        )
        await backend.aclose()
    print("  targets for the default: session R@5 >= 0.95, turn R@10 >= 0.80")


def _scope(question: Question) -> MemoryScope:
    return MemoryScope(user_id=question.user_id)


async def latency(args: argparse.Namespace, embedder: MiniLMEmbedder, work: Path) -> None:
    per_user = args.sessions * args.turns
    users = max(1, args.latency_turns // per_user)
    sessions, questions = generate(users=users, sessions=args.sessions, turns=args.turns, seed=80)
    reused = ReusedVectors(embedder, args.fill_distinct)
    path = work / "latency.db"
    store = SQLiteMemoryStore(path, embedder=reused)
    for session in sessions:
        await store.add(turn_records(session, context=True))
    turns = sum(len(s.turns) for s in sessions)
    reused.reuse = False
    lexical = SQLiteMemoryStore(path)
    sample = questions[:: max(1, len(questions) // args.queries)][: args.queries]
    print(f"latency: {turns:,} stored turns ({users} users), {len(sample)} queries")
    memory = ConversationMemory(store, embedder=reused)

    async def invoking(q: Question) -> None:
        thread = AgentThread(user_id=q.user_id)
        await memory.invoking([ChatMessage(Role.USER, q.text)], thread=thread)

    probes: list[tuple[str, Callable[[Question], Awaitable[object]]]] = [
        ("search, default fusion", lambda q: store.search(q.text, scope=_scope(q), limit=10)),
        ("search, BM25 only", lambda q: lexical.search(q.text, scope=_scope(q), limit=10)),
        ("ConversationMemory.recall", lambda q: memory.recall(q.text, user_id=q.user_id)),
        ("ConversationMemory.invoking", invoking),
    ]
    for label, probe in probes:
        timings: list[float] = []
        for q in sample:
            started = time.perf_counter()
            await probe(q)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[int(0.95 * (len(timings) - 1))]
        print(f"  {label:28} p50 {statistics.median(timings):7.1f} ms   p95 {p95:7.1f} ms")
    await store.aclose()
    await lexical.aclose()
    print(f"  store size: {_size(path) / turns * 1000 / 1e6:.2f} MB per 1,000 turns (with vectors)")
    print("  targets at 100,000 turns: recall p50 <= 20 ms, invoking p50 <= 30 ms")
    await ingest_rate(args, embedder, work)


async def ingest_rate(args: argparse.Namespace, embedder: MiniLMEmbedder, work: Path) -> None:
    """Turns/s of ``ingest`` with every turn embedded, on fresh stores: the median of
    ``--ingest-rounds`` rounds, beside the embedder alone on the same messages in the same rounds
    (the machine is noisy; the ratio says what memory adds to the embedder)."""
    fill, _ = generate(
        users=max(1, args.ingest_turns // (args.sessions * args.turns) + 1),
        sessions=args.sessions,
        turns=args.turns,
        seed=81,
    )
    sessions: list[Session] = []
    for session in fill:
        if sum(len(s.turns) for s in sessions) >= args.ingest_turns:
            break
        sessions.append(session)
    done = sum(len(s.turns) for s in sessions)
    texts = [t.text for s in sessions for t in s.turns]
    rates: list[float] = []
    bare: list[float] = []
    for round_ in range(args.ingest_rounds):
        for what in ("ingest", "embedder") if round_ % 2 == 0 else ("embedder", "ingest"):
            started = time.perf_counter()
            if what == "embedder":
                for start in range(0, len(texts), 256):
                    await embedder.embed(texts[start : start + 256])
                bare.append(done / (time.perf_counter() - started))
                continue
            fresh = make_backend(
                work / f"ingest{round_}.db", embedder=embedder, context=True, via=args.via
            )
            for session in sessions:
                await fresh.ingest(session)
            rates.append(done / (time.perf_counter() - started))
            await fresh.aclose()
    print(
        f"  ingest with embeddings: {statistics.median(rates):,.0f} turns/s median of "
        f"{len(rates)} rounds ({min(rates):,.0f}-{max(rates):,.0f}; {done:,} turns each; "
        f"target >= 300/s); the embedder alone: {statistics.median(bare):,.0f} texts/s, "
        f"ingest/embedder {statistics.median(r / b for r, b in zip(rates, bare, strict=True)):.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark of long-term memory (issue 8).")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--latency-turns", type=int, default=100_000)
    parser.add_argument("--fill-distinct", type=int, default=3_000)
    parser.add_argument("--ingest-turns", type=int, default=3_000)
    parser.add_argument("--ingest-rounds", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--fusion",
        action="append",
        default=[],
        metavar="LEX,VEC,RECENCY",
        help="also evaluate these fusion weights (repeatable), to compare with the default",
    )
    parser.add_argument(
        "--via",
        choices=["store", "conversation"],
        default="conversation",
        help="drive memory through ConversationMemory().ingest/recall (the default: what users "
        "and the held-out benchmark use) or through the store with records built here",
    )
    parser.add_argument(
        "--locomo",
        type=Path,
        default=DEFAULT_FILE if DEFAULT_FILE.exists() else None,
        metavar="PATH",
        help="a LoCoMo-shaped JSON file to evaluate (default: the development half, "
        "../shared/data/locomo-dev/locomo-dev.json, when present)",
    )
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    embedder = MiniLMEmbedder()
    with tempfile.TemporaryDirectory(prefix="threadline-bench-memory-") as tmp:
        if args.locomo is None:
            print(
                "real conversations: skipped, no LoCoMo file (give one with --locomo PATH; the "
                "development half lives in ../shared/data/locomo-dev/)"
            )
        elif not args.locomo.exists():
            raise SystemExit(f"--locomo {args.locomo}: no such file")
        else:
            await locomo(args.locomo, embedder, Path(tmp))
        if not args.skip_synthetic:
            await quality(args, embedder, Path(tmp))
        if not args.skip_latency:
            await latency(args, embedder, Path(tmp))
    embedder.close()


if __name__ == "__main__":
    asyncio.run(main())
