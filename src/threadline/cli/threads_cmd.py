"""``threadline threads list | show | export | import | fork | delete``: manage saved threads."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from threadline.cli._library import ThreadLibrary, default_home, summary_json
from threadline.cli._render import format_history, format_thread_table
from threadline.cli._retention import AGE_HELP, age_argument, thread_prune_lines
from threadline.cli._text import printable
from threadline.cli._thread_file import MAX_IMPORT_BYTES, read_thread_file
from threadline.threads.portable import portable_thread_state
from threadline.types.contents import JSONValue

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``threads`` and its subcommands."""
    parser = subparsers.add_parser("threads", help="list, show, export, import, fork, delete")
    commands = parser.add_subparsers(dest="threads_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="list saved threads, newest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = commands.add_parser("show", help="print a thread's messages")
    show.add_argument("id", metavar="ID")
    export = commands.add_parser("export", help="write a thread, messages included, as JSON")
    export.add_argument("id", metavar="ID")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    imp = commands.add_parser(
        "import",
        help="save a thread from an exported JSON file",
        description="Save a thread from a file written by `threads export` (at most "
        f"{MAX_IMPORT_BYTES // (1024 * 1024)} MiB). The whole file is checked first; a bad "
        "file changes nothing.",
    )
    imp.add_argument("file", metavar="FILE", help="the file, or - for stdin")
    imp.add_argument(
        "--new-id", action="store_true", help="save under a new id (to keep the original too)"
    )
    fork = commands.add_parser("fork", help="branch a thread; prints the new id")
    fork.add_argument("id", metavar="ID")
    delete = commands.add_parser("delete", help="delete a thread (its forks keep their history)")
    delete.add_argument("id", metavar="ID")
    _add_prune_parser(commands)
    parser.set_defaults(handler=run)


def _add_prune_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = commands.add_parser(
        "prune",
        help="delete threads not updated for a while",
        description="Delete the saved threads last updated longer ago than --older-than. An old "
        "thread that a newer fork still reads is kept.",
    )
    prune.add_argument(
        "--older-than", required=True, type=age_argument, metavar="AGE", help=AGE_HELP
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")


def _export_text(state: dict[str, JSONValue], *, terminal: bool) -> str:
    """The file's text: readable UTF-8, or all-ASCII escapes where raw text would do harm.

    Text that is not valid Unicode (a lone surrogate stored before imports were checked) cannot
    be written as UTF-8; JSON's escapes carry it, and importing the file names the field. On a
    terminal, escapes also keep control codes in the text from acting on it.
    """
    text = json.dumps(state, ensure_ascii=terminal, indent=2) + "\n"
    if not terminal:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(state, indent=2) + "\n"
    return text


async def _run(args: argparse.Namespace, library: ThreadLibrary) -> int:
    command: str = args.threads_command
    if command == "list":
        summaries = await library.summaries()
        if args.json:
            for summary in summaries:
                print(json.dumps(summary_json(summary)))
        else:
            for line in format_thread_table(summaries):
                print(line)
        for bad in (s for s in summaries if s.error):
            shown = printable(bad.thread_id, multiline=False)
            print(
                f"threadline: warning: thread {shown} cannot be read: {printable(bad.error or '')}"
                f"; `threadline threads delete {shown}` removes it",
                file=sys.stderr,
            )
        return 0
    if command == "prune":
        for line in thread_prune_lines(await library.prune(args.older_than, dry_run=args.dry_run)):
            print(line)
        return 0
    if command == "import":
        # Everything is validated before the database is touched: bad input changes nothing.
        portable = read_thread_file(args.file)
        thread_id = await library.import_thread(portable, new_id=args.new_id)
        print(f"imported thread {thread_id} ({len(portable.messages)} messages)")
        return 0
    thread_id = await library.resolve(args.id)
    if command == "show":
        for line in format_history(await library.messages(thread_id)):
            print(line)
    elif command == "export":
        state = await portable_thread_state(library.thread(thread_id))
        text = _export_text(state, terminal=not args.output and sys.stdout.isatty())
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
            print(f"exported thread {thread_id} to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    elif command == "fork":
        print(await library.fork(thread_id))
    elif command == "delete":
        await library.delete(thread_id)
        print(f"deleted thread {thread_id}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline threads``."""
    return asyncio.run(_run(args, ThreadLibrary(args.home or default_home())))
