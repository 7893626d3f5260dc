"""What tracing costs per turn: no provider, and the SDK with a batch exporter, against no tracing.

Run: python bench/tracing.py [--turns N] [--rounds R] [--baseline untraced|before-tracing]
[--baseline-src PATH]

Three set-ups run the same turns (``bench/turn_overhead.py``'s: a model that answers at once, so
only threadline's own work is timed), each in a fresh process, alternating their order R times:

* ``baseline``, by ``--baseline``:

  - ``untraced`` (the default): this tree with the calls the untraced path makes taken out, in a
    temporary copy: the turn's one ``tr.observing()`` check becomes ``False`` and the run loop's
    ``with tr.activated(turn.span):`` blocks plain blocks. What remains of tracing there is a
    few ``span is None`` / ``observed`` tests on attributes, tens of nanoseconds in all, so the
    ratio slightly understates what tracing costs when off, and compares like with like.
  - ``before-tracing``: the tree just before tracing was added (the parent of the commit that
    added ``src/threadline/_tracing.py``). Its ratio also counts every feature added since.
  - or ``--baseline-src PATH``: any tree.
* ``no provider``: this tree, with no tracer provider configured (the library's default).
* ``sdk batch``: this tree, with the OpenTelemetry SDK's ``TracerProvider`` and a
  ``BatchSpanProcessor`` to an exporter that drops the spans (so the export itself is free, and
  what is measured is making and queueing the spans), plus a ``MeterProvider`` for the metrics.

Each figure is the median per-turn time of one process; the table gives, per set-up, the median
of the R processes and the ratio to the baseline's median (the shared machine's noise cancels
only in such ratios from one run). Targets (issue 17): no provider <= 1.02, SDK <= 1.15.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("memory@10", "memory@1000", "sqlite@1000", "tools@10", "1ms-model@10")
"""Store and history size. ``tools``: a turn with one tool call (two model calls, a tool).
``1ms-model``: the memory@10 turn with a model that takes 1 ms to answer (faster than any real
model, local or remote): what tracing adds to a turn that does real work."""
TARGETS = {"no provider": 1.02, "sdk batch": 1.15}


def _install_sdk() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider())


class ToolClient:
    """Calls a tool on every other call and answers on the next, at once."""

    service_name = "instant"
    stores_history = False

    def __init__(self) -> None:
        from threadline import ChatMessage, ChatResponse, FunctionCallContent, Role

        call = FunctionCallContent(call_id="c1", name="add", arguments='{"a": 1, "b": 2}')
        self._answers = [
            ChatResponse(messages=(ChatMessage(Role.ASSISTANT, contents=[call]),)),
            ChatResponse(messages=(ChatMessage(Role.ASSISTANT, "three"),)),
        ]
        self._n = 0

    async def get_response(self, messages: Sequence[Any], *, options: Any) -> Any:
        answer = self._answers[self._n % 2]
        self._n += 1
        return answer

    def get_streaming_response(self, messages: Sequence[Any], *, options: Any) -> Any:
        raise NotImplementedError


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def _tool_turn_us(turns: int) -> float:
    import gc
    import time

    from threadline import ChatAgent

    agent = ChatAgent(ToolClient(), "You add.", tools=[add])
    thread = agent.get_new_thread()
    for _ in range(5):
        await agent.run("warm up", thread=thread)
    gc.collect()
    samples: list[float] = []
    for i in range(turns):
        start = time.perf_counter_ns()
        await agent.run(f"question {i}", thread=thread)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


async def _slow_turn_us(turns: int) -> float:
    import gc
    import time

    from threadline import AgentThread, ChatAgent, ChatMessageList, ChatResponse

    class OneMillisecond:
        service_name = "instant"
        stores_history = False

        def __init__(self) -> None:
            from threadline import ChatMessage, Role

            self._answer = ChatResponse(messages=(ChatMessage(Role.ASSISTANT, "an answer"),))

        async def get_response(self, messages: Sequence[Any], *, options: Any) -> Any:
            await asyncio.sleep(0.001)
            return self._answer

        def get_streaming_response(self, messages: Sequence[Any], *, options: Any) -> Any:
            raise NotImplementedError

    store = ChatMessageList()
    agent = ChatAgent(OneMillisecond(), "You are a helpful assistant")
    thread = AgentThread(message_store=store)
    for _ in range(5):
        await agent.run("warm up", thread=thread)
    gc.collect()
    samples: list[float] = []
    for i in range(turns // 4):  # each turn takes a millisecond: fewer of them
        start = time.perf_counter_ns()
        await agent.run(f"question {i}", thread=thread)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


async def _measure(turns: int, only: str | None = None) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    from threadline import ChatMessageList, SQLiteChatMessageStore
    from turn_overhead import (
        median_turn_us,
    )

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload in WORKLOADS if only is None else (only,):
            kind, size = workload.split("@")
            if kind == "tools":
                figures[workload] = await _tool_turn_us(turns)
                continue
            if kind == "1ms-model":
                figures[workload] = await _slow_turn_us(turns)
                continue
            db = Path(tmp) / f"{workload}.db"
            factory = ChatMessageList if kind == "memory" else (lambda: SQLiteChatMessageStore(db))  # noqa: B023
            figures[workload] = await median_turn_us(factory, int(size), turns)
    return figures


_COUNTED = ("observing", "tracing_on", "metrics_on", "start_span", "end_error", "activated")
"""What the untraced path may call in ``_tracing`` (everything else runs only with a span)."""


def _untraced_calls(turns: int) -> dict[str, dict[str, float]]:
    """Per workload: how often each ``_tracing`` function is called per turn with no provider.

    Every call site goes through the module (``from threadline import _tracing as tr``), so
    wrapping the module's functions counts them all. ``observing`` is called once per agent
    run, so counts are divided by its count.
    """
    from threadline import _tracing as tr

    counts: dict[str, int] = dict.fromkeys(_COUNTED, 0)
    originals = {name: getattr(tr, name) for name in _COUNTED}

    def counting(name: str) -> Any:
        original = originals[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return call

    for name in _COUNTED:
        setattr(tr, name, counting(name))
    out: dict[str, dict[str, float]] = {}
    try:
        for workload in WORKLOADS:
            for name in counts:
                counts[name] = 0
            asyncio.run(_measure(turns, only=workload))
            runs = counts["observing"] or 1
            out[workload] = {name: n / runs for name, n in counts.items()}
    finally:
        for name, original in originals.items():
            setattr(tr, name, original)
    return out


def _untraced_call_ns() -> dict[str, float]:
    """What each function costs per call with no provider (min of 7 timings of 200,000 calls)."""
    import timeit

    from threadline import _tracing as tr

    error = RuntimeError("x")

    def activated() -> None:
        with tr.activated(None):
            pass

    probes = {
        "observing": tr.observing,
        "tracing_on": tr.tracing_on,
        "metrics_on": tr.metrics_on,
        "start_span": lambda: tr.start_span("chat x"),
        "end_error": lambda: tr.end_error(None, error),
        "activated": activated,
    }
    return {
        name: min(timeit.repeat(probe, number=200_000, repeat=7)) / 200_000 * 1e9
        for name, probe in probes.items()
    }


def account(turns: int, compared: dict[str, float]) -> None:
    """Print what the untraced path's calls cost per turn, against the turn's own time."""
    calls = _untraced_calls(min(turns, 50))
    per_call = _untraced_call_ns()
    print("\nThe untraced path's own cost, counted in one process (no provider):")
    print("  ns per call: " + ", ".join(f"{n} {v:.0f}" for n, v in per_call.items()))
    print(f"  {'workload':<13} {'calls per turn':<44} {'ns/turn':>8} {'turn µs':>8} {'share':>7}")
    for workload in WORKLOADS:
        made = {n: c for n, c in calls[workload].items() if c}
        cost = sum(c * per_call[n] for n, c in made.items())
        listed = ", ".join(f"{n} {c:g}" for n, c in made.items())
        turn = compared[workload]
        print(f"  {workload:<13} {listed:<44} {cost:8.0f} {turn:8.1f} {cost / (turn * 1000):7.2%}")
    print(
        "  (plus a few `span is None` / `observed` tests on attributes per turn, tens of ns;"
        " target: no provider <= 2% of the turn)"
    )


def _child(mode: str, turns: int) -> None:
    if mode == "sdk batch":
        _install_sdk()
    print(json.dumps(asyncio.run(_measure(turns))))


def _run(mode: str, src: Path, turns: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--child", mode, "--turns", str(turns)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {mode!r} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline_tree(tmp: Path) -> Path:
    """The ``src`` of the commit before tracing was added (``_tracing.py``), extracted to ``tmp``.

    The further the tree has moved on since, the more the comparison includes other changes:
    give ``--baseline-src`` (a checkout with tracing taken out) to compare like with like.
    """
    root = HERE.parent
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "src/threadline/_tracing.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    base = f"{added}^"
    archive = subprocess.run(
        ["git", "archive", base, "src"], cwd=root, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    print(f"baseline: {added[:12]}^ (the commit before tracing)", file=sys.stderr)
    return tmp / "src"


_UNTRACED = {
    "threadline/agents/chat_agent.py": [("if tr.observing():", "if False:")],
    "threadline/agents/_run_loop.py": [("with tr.activated(turn.span):", "if True:")],
}
"""The untraced baseline's edits: (file, [(text, replacement)]); each text must occur."""


def _untraced_tree(tmp: Path) -> Path:
    """This tree's ``src`` copied to ``tmp``, with the untraced path's tracing calls taken out."""
    src = tmp / "src"
    shutil.copytree(HERE.parent / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    for name, edits in _UNTRACED.items():
        path = src / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            if old not in text:
                raise SystemExit(
                    f"untraced baseline: {old!r} is no longer in {name}; update _UNTRACED"
                )
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    print("baseline: this tree, the untraced path's tracing calls taken out", file=sys.stderr)
    return src


def compare(baseline: Path, rounds: int, turns: int) -> dict[str, float]:
    """All set-ups in fresh processes, order rotated each round; medians and ratios."""
    setups = [("baseline", baseline), ("no provider", HERE.parent / "src")]
    setups.append(("sdk batch", HERE.parent / "src"))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in setups}
    for r in range(rounds):
        order = setups[r % 3 :] + setups[: r % 3]
        if r % 2:
            order.reverse()
        for name, src in order:
            runs[name].append(_run(name, src, turns))
            print(f"  round {r} {name} done", file=sys.stderr)
    print(f"\nPer-turn time, µs: median of {rounds} processes (each the median of {turns} turns)")
    print(f"{'workload':<13}" + "".join(f"{name:>14}" for name, _ in setups) + "   ratios")
    for workload in WORKLOADS:
        medians = {n: statistics.median(run[workload] for run in runs[n]) for n in runs}
        base = medians["baseline"]
        ratios = "  ".join(
            f"{n}: {medians[n] / base:.3f} ({medians[n] - base:+.1f} µs)" for n in TARGETS
        )
        print(
            f"{workload:<13}" + "".join(f"{medians[n]:>14.1f}" for n, _ in setups) + f"   {ratios}"
        )
    print("\nTargets (issue 17): " + ", ".join(f"{n} <= {t:g}x" for n, t in TARGETS.items()))
    return {w: statistics.median(run[w] for run in runs["no provider"]) for w in WORKLOADS}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--baseline",
        choices=["untraced", "before-tracing"],
        default="untraced",
        help="what the set-ups are compared with (see the module docstring)",
    )
    parser.add_argument("--baseline-src", metavar="PATH", help="the tree without tracing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.turns)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_src:
            baseline = Path(args.baseline_src)
        elif args.baseline == "untraced":
            baseline = _untraced_tree(Path(tmp))
        else:
            baseline = _baseline_tree(Path(tmp))
        untraced = compare(baseline, args.rounds, args.turns)
    sys.path.insert(0, str(HERE.parent / "src"))
    account(args.turns, untraced)


if __name__ == "__main__":
    main()
