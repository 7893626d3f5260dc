"""``threadline ui``: the web UI over the local home (threads, group chats, memories).

Serves the pages of :mod:`threadline.ui` (the app is ``_ui_local.local_app``) on 127.0.0.1
only: the home holds one person's conversations, there are no keys, and nothing but this machine
should reach them. Open the printed address in a browser.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from threadline.agents.chat_agent import ChatAgent
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
    parser.add_argument(
        "--chat",
        action="store_true",
        help="add a chat box that continues a saved thread with the embedded model",
    )
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="with --chat: qwen-0.5b (default), qwen-1.5b, smollm2-135m or a GGUF file",
    )
    parser.set_defaults(handler=run)


def _local_agent(model: str | None) -> ChatAgent:
    """The agent of the chat box: the embedded model, checked now rather than on first use."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise UsageError(
            "ui --chat needs the embedded model: "
            "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'threadline[local]' (llama_cpp is not "
            "installed)"
        )
    try:
        local: Any = importlib.import_module("threadline.clients.local")
        client: Any = local.LocalChatClient(model)
    except Exception as exc:  # the model is missing or unusable: say so without a traceback
        raise UsageError(f"ui --chat: the embedded model did not start: {exc}") from exc
    return ChatAgent(client, "You are a helpful assistant.")


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
    if args.model is not None and not args.chat:
        raise UsageError("ui: --model chooses the model of --chat; add --chat")
    agent = _local_agent(args.model) if args.chat else None
    home: Path = args.home or default_home()
    print(f"threadline ui: http://127.0.0.1:{args.port}/ui/ (home {home})", flush=True)
    uvicorn.run(local_app(home, agent=agent), host="127.0.0.1", port=args.port, log_level="warning")
    return 0
