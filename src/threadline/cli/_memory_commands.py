"""What ``threadline chat`` says about its memory, and the ``/memory`` command.

Memory is on by default, so the chat says whose it is and how to turn it off, shows each fact it
learns as it learns it (``remembered: you are vegetarian``), lets the user list, search and forget
what it knows without leaving the chat, and says what it saves at ``/exit`` (issue 21: a memory
that acts silently made the chat feel broken).

Learning happens right after each reply, while the user reads it, not while the next message
waits: the facts of a turn are then known for the next one, and the next first token never
waits for an extraction.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from threadline.cli._text import printable
from threadline.exceptions import UsageError
from threadline.memory import (
    ContextProvider,
    MemoryRecord,
    MemoryScope,
    MemoryStore,
    UserPreferencesMemory,
)

__all__ = ["ChatMemory", "embed_stored", "second_person"]

USAGE = "usage: /memory [list] | /memory search WORDS | /memory forget ID|all"
_FACTS: list[str] = ["fact", "preference"]
_POSSESSIVE = re.compile(r"^the user's\b", re.IGNORECASE)
_SUBJECT_VERB = re.compile(r"^the user (\w+)\b", re.IGNORECASE)
_VERBS = {"is": "are", "was": "were", "has": "have", "does": "do"}


def _base_form(verb: str) -> str:
    """``likes`` -> ``like``, ``studies`` -> ``study``, ``is`` -> ``are``; others unchanged."""
    word = verb.lower()
    if word in _VERBS:
        return _VERBS[word]
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "oes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def second_person(fact: str) -> str:
    """``The user is vegetarian.`` as ``you are vegetarian``.

    Facts are stored in the third person, for the model; the chat speaks to the user.
    """
    text = fact.strip().rstrip(".")
    if match := _POSSESSIVE.match(text):
        return "your" + text[match.end() :]
    if match := _SUBJECT_VERB.match(text):
        return "you " + _base_form(match.group(1)) + text[match.end() :]
    return text


async def embed_stored(store: MemoryStore, out: TextIO | None = None) -> int:
    """Embed the memories stored before semantic search was installed, showing progress.

    Records written without the ``memory`` extra have no vectors, so installing it later would
    leave them findable by exact words only (issue 21). Every command that opens the memory with
    an embedder calls this first; it costs one count query when nothing is missing.
    """
    embed_missing = getattr(store, "embed_missing", None)
    if embed_missing is None or getattr(store, "embedder", None) is None:
        return 0
    stream = out or sys.stderr
    live = stream.isatty()
    shown = False

    def progress(done: int, total: int) -> None:
        nonlocal shown
        if live or done == total:
            end = "\n" if done == total else ""
            stream.write(
                f"\rmemory: embedding {total} memories stored before semantic search: "
                f"{done}/{total}{end}"
            )
            stream.flush()
            shown = True

    count: int = await embed_missing(progress=progress)
    if count and not shown:
        print(f"memory: embedded {count} memories stored before semantic search", file=stream)
    return count


class ChatMemory:
    """The memory of one chat: whose it is, what it learnt, and the ``/memory`` command."""

    def __init__(
        self,
        store: MemoryStore,
        user: str,
        providers: Sequence[ContextProvider],
        *,
        out: TextIO | None = None,
    ) -> None:
        self.store = store
        self.user = user
        self.scope = MemoryScope(user_id=user)
        self.providers = providers
        self.out = out or sys.stdout
        self._dim = self.out.isatty()
        self._known: set[str] | None = None

    def banner(self) -> str:
        """The banner's memory line."""
        return f"memory: on for {printable(self.user, multiline=False)} (--no-memory to turn off)"

    def say(self, text: str, *, dim: bool = False) -> None:
        line = printable(text)
        if dim and self._dim:
            line = f"\x1b[2m{line}\x1b[0m"
        print(line, file=self.out, flush=True)

    async def _facts(self) -> list[MemoryRecord]:
        return await self.store.list(scope=self.scope, kinds=_FACTS)  # type: ignore[arg-type]

    async def start(self) -> None:
        """Embed memories kept without vectors; note the facts known, to announce only new ones."""
        await embed_stored(self.store, sys.stderr)
        self._known = {r.id for r in await self._facts()}

    async def learn(self, done_waiting: Callable[[], object] = lambda: None) -> None:
        """Finish learning from the last turn and say what was learnt (a dim line per fact).

        ``done_waiting`` runs before anything is printed (it stops the caller's spinner).
        """
        for provider in self.providers:
            if isinstance(provider, UserPreferencesMemory):
                await provider.wait_pending(self.user)
        done_waiting()
        if self._known is None:
            await self.start()
            return
        for record in await self._facts():
            if record.id not in self._known:
                self._known.add(record.id)
                self.say(f"remembered: {second_person(record.text)}", dim=True)

    async def finish(self, end: Callable[[], Awaitable[object]]) -> None:
        """End the chat (``end`` ends its thread): its summary and last facts are saved, said so."""
        self.say(f"saving this chat's summary to {printable(self.user)}'s memory...", dim=True)
        await end()
        await self.learn()

    # -- /memory -------------------------------------------------------------------------

    async def command(self, arg: str) -> None:
        """``/memory [list]``, ``/memory search WORDS``, ``/memory forget ID|all``."""
        action, _, rest = arg.strip().partition(" ")
        rest = rest.strip()
        if action in ("", "list"):
            await self._list()
        elif action == "search":
            if not rest:
                raise UsageError(f"/memory search needs words to look for; {USAGE}")
            await self._search(rest)
        elif action == "forget":
            await self._forget(rest)
        else:
            raise UsageError(f"unknown /memory action {action!r}; {USAGE}")

    async def _list(self) -> None:
        facts = await self._facts()
        if not facts:
            self.say(f"nothing remembered about {self.user} yet")
            return
        self.say(f"what the chat remembers about {self.user} ({len(facts)}):")
        for record in facts:
            self.say(f"  {record.id}  {second_person(record.text)}")

    async def _search(self, words: str) -> None:
        hits = await self.store.search(words, scope=self.scope, limit=5)
        if not hits:
            self.say(f"no memories of {self.user} match {words!r}")
            return
        for hit in hits:
            text = " ".join(hit.record.text.split())
            text = text if len(text) <= 100 else text[:99] + "…"
            self.say(f"  {hit.record.id}  {hit.record.kind:<10}  {text}")

    async def _forget(self, which: str) -> None:
        if not which:
            raise UsageError(f"/memory forget needs a memory id (from /memory) or 'all'; {USAGE}")
        if which == "all":
            result = await self.store.forget(user_id=self.user)
            self._known = set()
            count = result.records
            self.say(f"forgot {count} memor{'y' if count == 1 else 'ies'} of {self.user}")
            return
        if not await self.store.delete([which], scope=self.scope):
            raise UsageError(f"no memory {which!r} of {self.user}; /memory lists the ids")
        self.say(f"forgot {which}")
