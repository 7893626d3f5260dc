"""Retention for thread databases: which old threads a prune deletes, and what it reports.

Stores only grow: every turn appends. A thread database (SQLite file, PostgreSQL schema, Redis
prefix) is kept bounded by ``await database.delete_threads(older_than=timedelta(days=30))``,
which deletes the threads last updated before the cutoff, their messages and the records kept
for them (a server's response objects), in one transaction (SQLite, PostgreSQL) or one script per
thread (Redis), so a thread appended to after the check is never deleted.

Forks share their parent's history instead of copying it (see ``fork()``), so a prune must not
delete a parent that a kept fork still reads: :func:`plan_prune` keeps an old thread while any of
its forks (at any depth) is kept, and reports it in :attr:`PruneResult.kept_for_forks`. Deleting
it would need a copy of the shared history in every fork, which makes a prune grow the store.

The databases share this module's planning so their answers agree; the conformance kit in
:mod:`threadline.testing.retention_conformance` checks each of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from threadline.exceptions import UsageError

__all__ = ["PruneResult", "cutoff_of", "parse_age", "plan_prune"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """What a prune deleted, or with ``dry_run`` what it would delete."""

    cutoff: float
    """Seconds since the epoch: threads last updated before it were old."""
    threads: tuple[str, ...] = ()
    """The ids of the threads deleted (or that a dry run would delete), forks before parents."""
    kept_for_forks: tuple[str, ...] = ()
    """Old threads kept because a fork that is kept still reads their history."""
    messages: int = 0
    """Message rows deleted: the deleted threads' own messages (not those shared from parents)."""
    records: int = 0
    """Records deleted with the threads (and expired records, where a caller named kinds)."""
    dry_run: bool = False
    """True when nothing was changed and the counts say what a prune would delete."""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")


def parse_age(text: str) -> timedelta:
    """An age written as a number and a unit: ``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"``.

    Raises:
        UsageError: the text is not such an age, or the age is zero (the message shows it).
    """
    match = _AGE.fullmatch(text) if isinstance(text, str) else None  # pyright: ignore[reportUnnecessaryIsInstance]
    if match is None:
        raise UsageError(
            f"cannot read the age {text!r}: give a positive number and a unit, "
            "s, m, h, d or w (e.g. 30d for 30 days)"
        )
    age = timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    if age <= timedelta(0):
        raise UsageError(f"a retention age must be positive, got {text!r}")
    return age


def cutoff_of(older_than: timedelta | datetime, *, now: float | None = None) -> float:
    """The cutoff (seconds since the epoch) that ``older_than`` means.

    A ``timedelta`` is an age: threads last updated more than that long ago are old. A
    ``datetime`` is the cutoff itself; it must carry a time zone and lie in the past.

    Raises:
        UsageError: the age is zero or negative, the datetime is naive or in the future, or
            ``older_than`` is neither (a zero age would delete every thread, in use or not).
    """
    now = time.time() if now is None else now
    if isinstance(older_than, timedelta):
        if older_than <= timedelta(0):
            raise UsageError(
                f"a retention age must be positive, got {older_than!r}: "
                "an age of zero would delete every thread, including those in use"
            )
        return now - older_than.total_seconds()
    if isinstance(older_than, datetime):  # pyright: ignore[reportUnnecessaryIsInstance]
        if older_than.tzinfo is None:
            raise UsageError(
                f"older_than={older_than!r} has no time zone; "
                "give an aware datetime, e.g. datetime.now(UTC) - timedelta(days=30)"
            )
        cutoff = older_than.timestamp()
        if cutoff > now:
            raise UsageError(
                f"older_than={older_than.isoformat()} is in the future: "
                "it would delete threads still in use; give a past time or a positive age"
            )
        return cutoff
    raise UsageError(
        f"older_than must be a timedelta or an aware datetime, got {type(older_than).__name__} "
        f"{older_than!r}"
    )


def plan_prune(threads: Iterable[tuple[str, str | None, bool]]) -> tuple[list[str], list[str]]:
    """Which threads to delete, given ``(thread_id, parent_id, is_old)`` for each thread.

    Every thread with a parent must be listed (old or not), so the plan sees all forks; threads
    that are neither old nor forks may be left out. A thread is deleted when it is old and every
    fork of it is deleted too; an old thread with a kept fork is kept with all its ancestors (the
    fork reads their history). Corrupt data (parents forming a loop) keeps the loop.

    Returns:
        The threads to delete, every fork before its parent (so no delete ever meets a fork
        still standing), and the old threads kept for their forks.
    """
    old: dict[str, bool] = {}
    children: dict[str, list[str]] = {}
    for thread_id, parent_id, is_old in threads:
        old[thread_id] = is_old
        if parent_id is not None and parent_id != thread_id:
            children.setdefault(parent_id, []).append(thread_id)
    deletable: dict[str, bool] = {}
    order: list[str] = []
    for root in old:
        if root in deletable:
            continue
        # Post-order walk without recursion: fork chains can be deeper than Python's stack.
        stack: list[tuple[str, bool]] = [(root, False)]
        on_path: set[str] = set()
        while stack:
            node, expanded = stack.pop()
            if expanded:
                on_path.discard(node)
                ok = (
                    node not in deletable
                    and old.get(node, False)
                    and all(deletable.get(c, False) for c in children.get(node, ()))
                )
                deletable[node] = ok
                if ok:
                    order.append(node)
                continue
            if node in deletable:
                continue
            if node in on_path:  # a loop: keep it rather than guess
                deletable[node] = False
                continue
            on_path.add(node)
            stack.append((node, True))
            stack.extend((c, False) for c in children.get(node, ()) if c not in deletable)
    kept = [t for t, is_old in old.items() if is_old and not deletable.get(t, False)]
    return order, kept
