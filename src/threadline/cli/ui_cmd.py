"""``threadline ui``: the web UI over the local home (threads, group chats, memories).

Serves the pages of :mod:`threadline.ui` (the app is ``_ui_local.local_app``) on 127.0.0.1
only: the home holds one person's conversations, there are no keys, and nothing but this machine
should reach them. Open the printed address in a browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from threadline.cli._library import default_home
from threadline.exceptions import UsageError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ui`` and its options."""
    parser = subparsers.add_parser(
        "ui",
        help="browse saved threads, group chats and memories in a web page",
        description="Serve the web UI over the threads, group chats and memories of the home "
        "directory, on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline ui``."""
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port; give one from 1 to 65535")
    # The server extra is needed only here: the rest of the command must work without it.
    try:
        import uvicorn

        from threadline.cli._ui_local import local_app
    except ImportError as exc:
        raise UsageError(
            f"threadline ui needs the server extra ({exc.name} is missing): "
            "pip install 'threadline[server]'"
        ) from exc
    home: Path = args.home or default_home()
    print(f"threadline ui: http://127.0.0.1:{args.port}/ui/ (home {home})", flush=True)
    uvicorn.run(local_app(home), host="127.0.0.1", port=args.port, log_level="warning")
    return 0
