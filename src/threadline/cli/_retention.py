"""What ``threads prune``, ``memory prune`` and ``serve --retention`` share: the age, the report."""

from __future__ import annotations

import argparse
from datetime import timedelta

from threadline.exceptions import UsageError
from threadline.memory.records import MemoryPruneResult
from threadline.threads.stores.retention import PruneResult, parse_age

__all__ = ["age_argument", "memory_prune_lines", "thread_prune_lines"]

AGE_HELP = "a number and a unit: s, m, h, d or w (e.g. 30d)"


def age_argument(text: str) -> timedelta:
    """``--older-than``/``--retention``'s value; argparse reports a bad one as bad usage (2)."""
    try:
        return parse_age(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def thread_prune_lines(result: PruneResult) -> list[str]:
    """What a thread prune did (or would do), for people; dry runs name each thread."""
    verb = "would delete" if result.dry_run else "deleted"
    lines = [
        f"{verb} {_plural(len(result.threads), 'thread', 'threads')} "
        f"({_plural(result.messages, 'message', 'messages')})"
    ]
    if result.dry_run:
        lines += [f"  {tid}" for tid in result.threads]
    if result.kept_for_forks:
        lines.append(
            f"kept {_plural(len(result.kept_for_forks), 'old thread', 'old threads')} "
            "that newer forks still read"
        )
    return lines


def memory_prune_lines(result: MemoryPruneResult) -> list[str]:
    """What a memory prune did (or would do), for people."""
    verb = "would delete" if result.dry_run else "deleted"
    return [
        f"{verb} {_plural(result.expired, 'expired memory', 'expired memories')} and "
        f"{_plural(result.superseded, 'superseded memory', 'superseded memories')} "
        f"(superseded before {result.cutoff:%Y-%m-%d %H:%M} UTC)"
    ]
