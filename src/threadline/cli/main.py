"""``threadline``: the command's one parser, which dispatches to each subcommand's handler.

Every subcommand lives in a module of this package exposing ``add_parser(subparsers)``, which
registers its arguments and sets ``handler`` (``Namespace -> exit status``); adding a command is
one entry in ``COMMANDS``. Global options (``--home``) are parsed here, before the subcommand, and
are also accepted after it.

Errors threadline raises on purpose are shown as one line (they say what to do); anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from threadline import __version__, configure_tracing
from threadline.cli import chat, mcp_cmd, memory_cmd, serve_cmd, threads_cmd, ui_cmd
from threadline.cli._library import check_home, default_home
from threadline.cli._text import printable
from threadline.exceptions import ThreadlineError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[ModuleType, ...] = (chat, threads_cmd, memory_cmd, serve_cmd, ui_cmd, mcp_cmd)
"""The subcommands' modules, in the order ``--help`` lists them."""


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        metavar="DIR",
        default=default,
        help="where threads are saved (overrides $THREADLINE_HOME)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``threadline`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="threadline",
        description="Agents that hold multi-turn conversations. Threads are saved under "
        "$THREADLINE_HOME (default: a per-user data directory).",
    )
    _add_global_options(parser, default=None)
    parser.add_argument("--version", action="version", version=f"threadline {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    # `threadline serve --home X` must mean what `threadline --home X serve` means.
    # SUPPRESS: given only before the subcommand, the subcommand must not reset it to None.
    for sub in subparsers.choices.values():
        _add_global_options(sub, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 error, 2 bad usage, 130 interrupted)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        # Every command keeps its files there: an unusable home is one clear line, for all.
        check_home(args.home or default_home(), create=False)
        # Traces go where the standard OTEL_* variables say (nowhere when none is set).
        configure_tracing(service_name="threadline")
        return handler(args)
    except ThreadlineError as exc:
        print(f"threadline: error: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
