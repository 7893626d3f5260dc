"""kill -9 of ``threadline serve`` during turns: acknowledged turns lost, duplicated, half (0).

Run: python bench/server_kill.py [--cycles N] [--workers W]

Each cycle starts ``threadline serve --store sqlite:PATH`` or ``--store postgresql://...`` (a
throwaway schema of the ``THREADLINE_POSTGRES_URL`` database; cycles alternate, each store
keeps its file or schema across its cycles), runs W concurrent clients of the official ``openai``
SDK sending turns (half on a conversation, half on a ``previous_response_id`` chain, each with an
``Idempotency-Key``) plus two Chat Completions clients, SIGKILLs the server at a random moment,
restarts it and checks, for every turn answered with 200 (acknowledged): its input and its one
reply are stored, once, in order, and its response object is retrievable. The turn in flight at
the kill may be stored only whole and with its answer (a retry with its key then replays it,
changing nothing) or not at all. After its last cycle each store is checked again whole.
Chat Completions is stateless (nothing is stored), so its turns are counted, not checked.
The verification is that of tests/hosting/test_crash_turns.py, counted instead of asserted.
Exits non-zero on any lost, duplicated or half turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.hosting.conftest import drop_schema, postgres_database  # noqa: E402
from tests.hosting.crash_harness import (  # noqa: E402
    Backend,
    Worker,
    drive,
    idempotency_claim,
    start,
)

from threadline import ChatMessage, Role  # noqa: E402


@dataclass
class Tally:
    """Counts over all cycles, and what each anomaly was."""

    acked: int = 0
    chat_acked: int = 0
    in_flight_stored: int = 0
    lost: int = 0
    duplicated: int = 0
    half: int = 0
    anomalies: list[str] = field(default_factory=lambda: [])
    per_store: Counter[str] = field(default_factory=lambda: Counter())

    def bad(self, kind: str, count: int, what: str) -> None:
        if count <= 0:
            return
        setattr(self, kind, getattr(self, kind) + count)
        self.anomalies.append(f"{kind} {count}: {what}")


def turns(messages: Sequence[ChatMessage]) -> tuple[list[str], int]:
    """The user inputs answered by exactly one reply, and how many messages are not such a pair."""
    whole: list[str] = []
    half = 0
    i = 0
    while i < len(messages):
        if messages[i].role == Role.USER and i + 1 < len(messages):
            reply = messages[i + 1]
            if reply.role == Role.ASSISTANT and reply.text == "pong":
                whole.append(messages[i].text)
                i += 2
                continue
        half += 1
        i += 1
    return whole, half


async def stored_turns(
    client: openai.AsyncOpenAI, backend: Backend, worker: Worker
) -> tuple[list[str], int]:
    """The worker's thread as stored: whole turns and stray messages."""
    if worker.conversation is not None:
        return turns(await backend.messages(worker.conversation))
    if not worker.acked:
        return [], 0
    row = await backend.row(
        "SELECT thread_id FROM threadline_records WHERE kind = 'response' AND id = %s",
        (worker.acked[-1],),
    )
    if row is None:
        return [], 0
    return turns(await backend.messages(row[0]))


async def check(
    client: openai.AsyncOpenAI, backend: Backend, worker: Worker, tally: Tally, *, retry: bool
) -> None:
    """Count what of the worker's acknowledged turns is missing, doubled or half."""
    whole, half = await stored_turns(client, backend, worker)
    acked = [worker.body(i) for i in range(len(worker.acked))]
    seen = Counter(whole)
    tally.bad("half", half, f"{worker.name}: {half} messages outside a whole turn")
    tally.bad("lost", sum(1 for body in acked if body not in seen), f"{worker.name} {whole}")
    tally.bad("duplicated", sum(n - 1 for n in seen.values()), f"{worker.name} {whole}")
    if whole[: len(acked)] != acked and set(acked) <= set(seen):
        tally.anomalies.append(f"out of order: {worker.name} {whole}")
    missing = 0
    for response_id in worker.acked:
        try:
            if (await client.responses.retrieve(response_id)).status != "completed":
                missing += 1
        except openai.NotFoundError:
            missing += 1
    tally.bad("half", missing, f"{worker.name}: {missing} acknowledged responses not retrievable")
    if not retry:
        return
    extra = len(whole) - len(acked)
    tally.bad("duplicated", extra - 1, f"{worker.name}: {extra} turns beyond the acknowledged")
    in_flight = worker.body(len(acked))
    claim = await idempotency_claim(backend, in_flight)
    if extra <= 0:  # the turn in flight left nothing but perhaps a claim
        if claim is not None and claim[0] is not None:
            tally.bad("half", 1, f"{worker.name}: an answer for {in_flight} without its turn")
        return
    tally.in_flight_stored += 1
    if claim is None or claim[0] != 200:
        tally.bad("half", 1, f"{worker.name}: {in_flight} stored without its answer ({claim})")
        return
    answered = json.loads(claim[1] or "{}")["_threadline_response"]["id"]
    headers = {"Idempotency-Key": in_flight}
    if worker.conversation is not None:
        again = await client.responses.create(
            input=in_flight, conversation=worker.conversation, extra_headers=headers
        )
    else:
        again = await client.responses.create(
            input=in_flight, previous_response_id=worker.acked[-1], extra_headers=headers
        )
    if again.id != answered:
        tally.bad("duplicated", 1, f"{worker.name}: retry of {in_flight} ran again")
    after, _ = await stored_turns(client, backend, worker)
    tally.bad("duplicated", len(after) - len(whole), f"{worker.name}: retry stored {after}")


async def chat(client: openai.AsyncOpenAI, tally: Tally) -> None:
    """Chat Completions turns until the server dies (stateless: counted only)."""
    while True:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "ping"}]
        )
        tally.chat_acked += 1


async def cycle(
    backend: Backend, name: str, n: int, workers: int, rng: random.Random, tally: Tally
) -> list[Worker]:
    """One start, load, SIGKILL, restart and check; the cycle's workers."""
    proc, url = await start(backend)
    async with openai.AsyncOpenAI(base_url=url, api_key="crash-key", max_retries=0) as client:
        made: list[Worker] = []
        for w in range(workers):
            conversation = (await client.conversations.create()).id if w % 2 == 0 else None
            made.append(Worker(f"c{n}{name}w{w}", conversation))
        tasks = [asyncio.create_task(drive(client, w)) for w in made]
        tasks += [asyncio.create_task(chat(client, tally)) for _ in range(2)]
        await asyncio.sleep(rng.uniform(0.3, 3.0))
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
    proc, url = await start(backend)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="crash-key", max_retries=0) as client:
            for worker in made:
                tally.acked += len(worker.acked)
                tally.per_store[name] += len(worker.acked)
                await check(client, backend, worker, tally, retry=True)
    finally:
        proc.terminate()
        await proc.wait()
    return made


async def recheck(backend: Backend, made: list[Worker], tally: Tally) -> None:
    """After a store's last cycle: every acknowledged turn of every cycle is still there once."""
    proc, url = await start(backend)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="crash-key", max_retries=0) as client:
            for worker in made:
                before = (tally.lost, tally.duplicated, tally.half)
                await check(client, backend, worker, tally, retry=False)
                if (tally.lost, tally.duplicated, tally.half) != before:
                    tally.anomalies.append(f"recheck: {worker.name} changed after later cycles")
            # The check is not blind: two turns "acknowledged" on a real thread but never sent
            # are lost, and a response id never issued is not retrievable.
            planted = next(w for w in made if w.acked)
            ghost = Worker(f"{planted.name}-ghost", planted.conversation)
            ghost.acked = [planted.acked[0], "resp_planted"]
            seen = Tally()
            await check(client, backend, ghost, seen, retry=False)
            if seen.lost != 2 or seen.half != 1:
                tally.anomalies.append(f"the check missed a planted lost turn: {seen}")
    finally:
        proc.terminate()
        await proc.wait()


async def run(cycles: int, workers: int, seed: int) -> tuple[Tally, float]:
    rng = random.Random(seed)
    tally = Tally()
    started = time.perf_counter()
    schema = "tl_kill_" + os.urandom(4).hex()
    await (await postgres_database(schema)).aclose()  # the schema exists before the server
    url = os.environ.get("THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "threads.db"
        backends = {
            "sqlite": Backend(["--store", f"sqlite:{db}"], sqlite=db),
            "postgres": Backend(["--store", url, "--postgres-schema", schema], schema=schema),
        }
        made: dict[str, list[Worker]] = {"sqlite": [], "postgres": []}
        try:
            for n in range(cycles):
                name = "sqlite" if n % 2 == 0 else "postgres"
                made[name] += await cycle(backends[name], name, n, workers, rng, tally)
                print(f"cycle {n + 1}/{cycles} ({name}): {tally.acked} acknowledged so far, "
                      f"lost {tally.lost}, duplicated {tally.duplicated}, half {tally.half}",
                      flush=True)  # fmt: skip
            for name, backend in backends.items():
                if made[name]:
                    await recheck(backend, made[name], tally)
        finally:
            await drop_schema(schema)
    return tally, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, default=25, help="kill -9 cycles (25)")
    parser.add_argument("--workers", type=int, default=6, help="Responses clients per cycle (6)")
    parser.add_argument("--seed", type=int, default=20, help="random seed of the kill moments")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.workers < 1:
        parser.error("--cycles and --workers must be 1 or more")
    tally, elapsed = asyncio.run(run(args.cycles, args.workers, args.seed))
    print(
        f"\nthreadline serve, kill -9 during turns, {args.workers} Responses clients + 2 Chat "
        f"Completions clients, {elapsed:.0f} s"
    )
    print(f"{'cycles':<34}{args.cycles:>8}")
    for name, count in sorted(tally.per_store.items()):
        print(f"{'acknowledged turns, ' + name:<34}{count:>8}")
    print(f"{'acknowledged turns':<34}{tally.acked:>8}")
    print(f"{'in-flight turns stored whole':<34}{tally.in_flight_stored:>8}")
    print(f"{'Chat Completions acknowledged':<34}{tally.chat_acked:>8}")
    for label, count in (("lost", tally.lost), ("duplicated", tally.duplicated)):
        print(f"{label + ' (target 0)':<34}{count:>8}")
    print(f"{'half (target 0)':<34}{tally.half:>8}")
    for line in tally.anomalies[:30]:
        print(f"ANOMALY: {line}")
    return 1 if tally.lost or tally.duplicated or tally.half or tally.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
