"""``threadline``: the command's entry point, which parses arguments and reports errors.

Errors threadline raises on purpose are shown as one line (they say what to do); anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from threadline import __version__
from threadline.cli import chat, memory_cmd, threads_cmd
from threadline.exceptions import ThreadlineError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``threadline`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="threadline",
        description="Agents that hold multi-turn conversations. Threads are saved under "
        "$THREADLINE_HOME (default: a per-user data directory).",
    )
    parser.add_argument("--version", action="version", version=f"threadline {__version__}")
    parser.add_argument(
        "--home",
        type=Path,
        metavar="DIR",
        help="where threads are saved (overrides $THREADLINE_HOME)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chat.add_parser(subparsers)
    threads_cmd.add_parser(subparsers)
    memory_cmd.add_parser(subparsers)
    # Listed here for --help; main() hands `serve` and its arguments to the server's own parser.
    subparsers.add_parser(
        "serve",
        help="serve an agent over the OpenAI APIs (threadline serve --help)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 error, 2 bad usage, 130 interrupted)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        from threadline.hosting.cli import main as serve

        return serve(arguments[1:])
    args = build_parser().parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ThreadlineError as exc:
        print(f"threadline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
