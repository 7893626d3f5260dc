"""``threadline memory list | search | forget`` and the memory of ``threadline chat --user``.

Memories live in one SQLite file beside the saved threads (``$THREADLINE_HOME/memory.sqlite3``),
per user: ``--user`` defaults to the account running the command, so a new chat remembers the
earlier chats of the same person and nobody else's.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from threadline.cli._library import default_home
from threadline.cli._memory_commands import embed_stored
from threadline.cli._retention import AGE_HELP, age_argument, memory_prune_lines
from threadline.cli._text import printable
from threadline.clients.base import ChatClient
from threadline.exceptions import UsageError
from threadline.memory import (
    ContextProvider,
    ConversationMemory,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
    MemoryStore,
    UserPreferencesMemory,
    open_memory_store,
)
from threadline.memory.opening import MEMORY_FILE

__all__ = [
    "MEMORY_FILE",
    "add_parser",
    "add_user_option",
    "chat_memory",
    "memory_user",
    "open_store",
    "run",
]

_LISTED: list[Any] = ["fact", "preference", "summary"]
MAX_USER_NAME = 128
"""Longer ``--user`` names are refused: a name is a label, not a place to store text."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def os_user() -> str:
    """The account running the command: the default owner of memories."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        return "default"


def check_user_name(name: str) -> str:
    """``name`` when it can own memories: not blank, at most 128 characters, no control codes.

    An empty ``--user ""`` must never fall back to the OS user: ``forget --all`` would then erase
    someone else's memories than the one named.
    """
    if not name.strip():
        raise UsageError("--user must name someone; got an empty name")
    if len(name) > MAX_USER_NAME:
        raise UsageError(
            f"--user has {len(name)} characters, over the limit of {MAX_USER_NAME}; use a shorter "
            "name"
        )
    if _CONTROL.search(name):
        raise UsageError(
            f"--user '{printable(name, multiline=False)}' holds control characters; use plain text"
        )
    return name


def add_user_option(parser: argparse.ArgumentParser) -> None:
    """``--user NAME`` and ``--no-memory``, for ``chat``."""
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="whose memories to use: facts and past chats are remembered per user "
        "(default: the OS user)",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="do not remember anything from this chat, nor use earlier ones",
    )


def open_store(home: Path) -> MemoryStore:
    """The user memories of ``home`` (created on first use); semantic search when installed."""
    return open_memory_store(home / MEMORY_FILE)


def chat_memory(store: MemoryStore, client: ChatClient) -> list[ContextProvider]:
    """Both memories; the chat's model extracts facts. No memory tools: small models misuse them.

    Placed so the prompt's start never moves and the model reuses what it evaluated (issue 21):
    the user's facts are pinned in the thread's instructions at its first call, and each
    relevant past turn of the user's goes once, as a background message before the newest
    input (not the model's past replies: it would repeat its own old mistakes).
    """
    return [
        ConversationMemory(store, limit=3, context_as="messages", recall_replies=False),
        UserPreferencesMemory(
            store,
            extractor=client,
            extraction_timeout=120.0,
            tools=False,
            context_as="pinned",
        ),
    ]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``memory`` and its subcommands."""
    parser = subparsers.add_parser("memory", help="list, search or forget what chats remember")
    commands = parser.add_subparsers(dest="memory_command", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list", help="facts, preferences and chat summaries, newest first"
    )
    search = commands.add_parser("search", help="the memories most relevant to a query")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--limit", type=int, default=10, metavar="N", help="at most N (10)")
    forget = commands.add_parser("forget", help="delete one memory, or all of the user's")
    which = forget.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", metavar="ID", help="the memory's id (from list/search)")
    which.add_argument("--all", action="store_true", help="every memory of the user")
    prune = commands.add_parser(
        "prune",
        help="delete expired memories, and superseded ones older than an age (every user's)",
    )
    prune.add_argument(
        "--older-than", required=True, type=age_argument, metavar="AGE", help=AGE_HELP
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    commands.add_parser(
        "reindex",
        help="embed memories stored before semantic search was installed (the memory extra)",
    )
    for sub in (listing, search, forget):
        sub.add_argument("--user", metavar="NAME", help="whose memories (default: the OS user)")
    for sub in (listing, search):
        sub.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def _line(record: MemoryRecord, score: float | None = None) -> str:
    when = f"{record.occurred_at:%Y-%m-%d}" if record.occurred_at else "----------"
    text = " ".join(record.text.split())
    text = text if len(text) <= 100 else text[:99] + "…"
    prefix = f"{score:6.3f}  " if score is not None else ""
    # Memory text comes from chats and models: never let it drive the terminal.
    line = f"{prefix}{record.id}  {when}  {record.kind:<10}  {text}"
    return printable(line, multiline=False)


def _json(record: MemoryRecord, score: float | None = None) -> str:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    data: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind,
        "text": record.text,
        "thread_id": record.thread_id,
        "message_ids": list(record.message_ids),
        "occurred_at": iso(record.occurred_at),
        "recorded_at": iso(record.recorded_at),
    }
    if score is not None:
        data["score"] = score
    return json.dumps(data)


async def _run(args: argparse.Namespace, store: MemoryStore, user: str) -> int:
    scope = MemoryScope(user_id=user)
    command: str = args.memory_command
    if command == "prune":
        prune = getattr(store, "prune", None)
        if prune is None:  # every shipped store has it
            raise UsageError(f"memory store {store!r} cannot prune")
        pruned: MemoryPruneResult = await prune(older_than=args.older_than, dry_run=args.dry_run)
        for line in memory_prune_lines(pruned):
            print(line)
    elif command == "reindex":
        if getattr(store, "embedder", None) is None:
            raise UsageError(
                "semantic search is not installed, so there is nothing to embed with: "
                "pip install 'threadline[memory]', then run this again"
            )
        count = await embed_stored(store, sys.stderr)
        print(
            f"embedded {count} memor{'y' if count == 1 else 'ies'}"
            if count
            else "every memory already has a vector"
        )
    elif command == "list":
        for record in await store.list(scope=scope, kinds=_LISTED):
            print(_json(record) if args.json else _line(record))
    elif command == "search":
        if args.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {args.limit}")
        await embed_stored(store, sys.stderr)  # else older memories are found by words only
        hits = await store.search(args.query, scope=scope, limit=args.limit)
        for hit in hits:
            print(_json(hit.record, hit.score) if args.json else _line(hit.record, hit.score))
        if not hits and not args.json:
            query = printable(args.query, multiline=False)
            print(f"no memories of {user} match '{query}'", file=sys.stderr)
    elif args.all:
        result = await store.forget(user_id=user)
        count = result.records
        print(f"forgot {count} memor{'y' if count == 1 else 'ies'} of {user}")
        if not result.purged:
            print(f"warning: {result.remaining}", file=sys.stderr)
    else:
        if not await store.delete([args.id], scope=scope):
            raise UsageError(
                f"no memory {args.id!r} of user {user!r}; `threadline memory list` shows the ids"
            )
        print(f"forgot {args.id}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline memory``."""
    name: str | None = getattr(args, "user", None)  # prune has no --user: it spans users
    user = os_user() if name is None else check_user_name(name)
    store = open_store(args.home or default_home())

    async def go() -> int:
        try:
            return await _run(args, store, user)
        finally:
            await store.aclose()

    return asyncio.run(go())


def memory_user(args: argparse.Namespace) -> str | None:
    """The chat's user, or ``None`` with ``--no-memory``."""
    if getattr(args, "no_memory", False):
        return None
    user = cast("str | None", getattr(args, "user", None))
    return os_user() if user is None else check_user_name(user)
