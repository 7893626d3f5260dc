"""``threadline mcp``: serve a user's long-term memory (and optionally an agent) as MCP tools.

Other agents and desktop assistants then share one memory with threadline agents: what one
remembers, the others recall. Over stdio (the default) the process serves the user named by
``--user`` (default: the OS user, as ``threadline memory`` and ``chat`` use); over streamable
HTTP (``--http HOST:PORT``) each request's bearer key names the user (``--api-key KEY=USER``,
repeatable, or ``THREADLINE_API_KEYS``), and requests without a known key are refused. No tool
takes a user argument (see :mod:`threadline.cli._mcp_server`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from threadline.cli._library import default_home
from threadline.cli.memory_cmd import check_user_name, open_store, os_user
from threadline.cli.serve_cmd import load_agent, parse_api_keys
from threadline.exceptions import UsageError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``mcp`` and its options."""
    parser = subparsers.add_parser(
        "mcp",
        help="serve a user's memory (and an agent) as MCP tools",
        description="Serve the long-term memory threadline agents keep, as the MCP tools "
        "remember, recall and forget, so other agents and assistants share it. Over stdio by "
        "default (for one user); --http serves several users, each by its bearer key.",
    )
    parser.add_argument(
        "--user", metavar="NAME", help="over stdio: whose memory (default: the OS user)"
    )
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY=USER",
        help="with --http: a bearer key and the user it reaches (repeatable); also read from "
        "THREADLINE_API_KEYS (comma-separated). Required with --http",
    )
    parser.add_argument(
        "--agent",
        metavar="MODULE:AGENT",
        help="also expose this agent as the tool ask_<name> (one thread per MCP session)",
    )
    parser.set_defaults(handler=run)


def _address(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"mcp: --http takes HOST:PORT, e.g. 127.0.0.1:8765; got {spec!r}")
    return host.strip("[]"), int(port)


def _keys(args: argparse.Namespace) -> dict[str, str]:
    specs: list[str] = list(args.api_key)
    specs += [s for s in os.environ.get("THREADLINE_API_KEYS", "").split(",") if s.strip()]
    keys = parse_api_keys(specs)
    for user in keys.values():
        check_user_name(user)
    return keys


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline mcp``."""
    from threadline.cli._mcp_server import http_user, keyed_app, memory_server, stdio_user

    agent = load_agent(args.agent) if args.agent else None
    if args.http:
        if args.user is not None:
            raise UsageError(
                "mcp: with --http each request's key names its user; give --api-key KEY=USER "
                "instead of --user"
            )
        host, port = _address(args.http)
        keys = _keys(args)
        if not keys:
            raise UsageError(
                "mcp: --http needs at least one --api-key KEY=USER (or THREADLINE_API_KEYS): "
                "the key decides whose memory a request reaches"
            )
        user_of = http_user(keys)
    else:
        host, port, keys = "", 0, {}
        user_of = stdio_user(check_user_name(args.user if args.user is not None else os_user()))
    store = open_store(args.home or default_home())
    server = memory_server(store, user_of, agent=agent)

    async def serve() -> None:
        try:
            if not args.http:
                await server.run_stdio_async()
                return
            import uvicorn

            app: Any = keyed_app(server.streamable_http_app(host=host), keys)
            config = uvicorn.Config(app, host=host, port=port, log_level="warning")
            await uvicorn.Server(config).serve()
        finally:
            await store.aclose()

    asyncio.run(serve())
    return 0
