"""``threadline serve``: host an agent behind the OpenAI APIs (argument parsing only).

The server is a library (``threadline.hosting``): this module turns ``serve module:agent
[options]`` (or ``serve --local``) into a ``ServerConfig`` and hands it to
``threadline.hosting.serve``. Nothing here knows how requests are served.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from threadline.agents.chat_agent import ChatAgent
from threadline.cli._retention import AGE_HELP, age_argument
from threadline.exceptions import UsageError

__all__ = [
    "add_parser",
    "default_db",
    "load_agent",
    "parse_api_keys",
    "run",
    "store_spec",
    "with_memory",
]

DEFAULT_DB = "threadline-server.db"
"""The server's SQLite file when neither ``--db`` nor a home directory is given (in the cwd)."""
HOME_DB = "server.db"
"""The server's SQLite file inside ``--home`` / ``$THREADLINE_HOME`` when one is given."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` and its options."""
    parser = subparsers.add_parser(
        "serve",
        help="serve an agent over the OpenAI APIs",
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
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="with --local: qwen-0.5b (default), qwen-1.5b, smollm2-135m or a GGUF file",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--store",
        metavar="SPEC",
        help="where conversations (as threads) and their records live: sqlite:PATH or "
        f"postgresql://USER@HOST:PORT/DB (default: sqlite: {HOME_DB} in --home or "
        f"$THREADLINE_HOME when given, else {DEFAULT_DB} in the current directory)",
    )
    parser.add_argument("--db", metavar="PATH", help="older spelling of --store sqlite:PATH")
    parser.add_argument("--postgres", metavar="URL", help="older spelling of --store URL")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="move the conversations of a database made by an earlier threadline (its "
        "tl_items table) into threads, once, then serve",
    )
    parser.add_argument(
        "--postgres-schema", default="threadline", help="schema for the tables (threadline)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[=ACCOUNT]",
        help="accept this bearer key (repeatable); without any, no key is needed. "
        "Also read from THREADLINE_API_KEYS (comma-separated)",
    )
    parser.add_argument("--model-name", default="threadline", help="the model id to advertise")
    parser.add_argument(
        "--max-body-bytes", type=int, default=4 * 1024 * 1024, help="larger bodies get 413"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (info)")
    parser.add_argument(
        "--memory",
        metavar="PATH|URL",
        help="remember each caller across requests (facts and past conversations), per API key "
        "and per request 'user', in this SQLite file or PostgreSQL database (postgresql://..., "
        "shared by several servers); off by default",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on shutdown (SIGTERM, Ctrl-C), let memory learning still running finish for up "
        "to this long; what is left is dropped and logged (10)",
    )
    parser.add_argument(
        "--approval-doubt-seconds",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="an approval answer unfinished this long (its server was killed mid-call) is in "
        "doubt: the next answer records the call's outcome as unknown, never runs it again; keep "
        "it above your longest approved tool call (300)",
    )
    parser.add_argument(
        "--retention",
        type=age_argument,
        metavar="AGE",
        help="delete conversations not updated for AGE, with their response objects, while "
        f"serving; {AGE_HELP}. Off by default",
    )
    parser.set_defaults(handler=run)


def default_db(home: Path | None) -> str:
    """Where the server keeps its SQLite file when ``--db`` is not given.

    An explicit home (``--home`` or ``$THREADLINE_HOME``) holds it beside the saved threads; with
    neither, it stays in the current directory as it always did.
    """
    if home is None:
        env_home = os.environ.get("THREADLINE_HOME")
        home = Path(env_home) if env_home else None
    return DEFAULT_DB if home is None else str(home / HOME_DB)


def store_spec(args: argparse.Namespace) -> str:
    """The ``--store`` spec, from ``--store`` or an older spelling (with a one-line notice).

    Raises:
        UsageError: ``--store`` and an older spelling were both given.
    """
    if args.db is None and args.postgres is None:
        return args.store or f"sqlite:{default_db(args.home)}"
    if args.store is not None or (args.db is not None and args.postgres is not None):
        raise UsageError("serve: give one of --store, --db and --postgres")
    spec = f"sqlite:{args.db}" if args.db is not None else str(args.postgres)
    option = "--db" if args.db is not None else "--postgres"
    shown = spec if args.db is not None else "postgresql://..."
    print(f"threadline: notice: {option} is an older spelling of --store {shown}", file=sys.stderr)
    return spec


def parse_api_keys(specs: Sequence[str]) -> dict[str, str]:
    """``KEY`` or ``KEY=ACCOUNT`` entries as a key-to-account map.

    A key without an account gets one derived from its hash, so the key itself is never stored.

    Raises:
        UsageError: an entry has an empty key.
    """
    keys: dict[str, str] = {}
    for spec in specs:
        key, sep, account = spec.partition("=")
        key = key.strip()
        if not key:
            raise UsageError(f"serve: empty API key in {spec!r}; give --api-key KEY[=ACCOUNT]")
        keys[key] = (
            account.strip()
            if sep and account.strip()
            else ("key-" + hashlib.sha256(key.encode()).hexdigest()[:16])
        )
    return keys


def load_agent(spec: str) -> ChatAgent:
    """Import ``module:attribute`` (from the current directory too); call it when it is a factory.

    Raises:
        UsageError: the spec is malformed, the module or attribute is missing, or it is not an
            agent.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"serve: give the agent as module:attribute, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"serve: cannot import {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise UsageError(f"serve: {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(target, ChatAgent) and callable(target):
        target = target()
    if not isinstance(target, ChatAgent):
        raise UsageError(
            f"serve: {spec} is a {type(target).__name__}, not a ChatAgent "
            "(or a function returning one)"
        )
    return target


def _local_agent(model: str | None) -> ChatAgent:
    # Checked here, at start-up: the client itself only imports llama.cpp on the first request,
    # which would start a server that fails every call.
    if importlib.util.find_spec("llama_cpp") is None:
        raise UsageError(
            "serve --local needs the embedded model: "
            "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'threadline[local]' (llama_cpp is not "
            "installed)"
        )
    try:
        local: Any = importlib.import_module("threadline.clients.local")
        client: Any = local.LocalChatClient(model)
    except Exception as exc:  # the model is missing or unusable: say so without a traceback
        raise UsageError(f"serve --local: the embedded model did not start: {exc}") from exc
    return ChatAgent(client, "You are a helpful assistant.")


def with_memory(agent: ChatAgent, path: str) -> ChatAgent:
    """``agent`` plus user-preferences and conversation memory in ``path``.

    ``path`` is a SQLite file or a ``postgresql://`` URL, opened as ``threadline chat`` opens its
    memory (:func:`threadline.memory.open_memory_store`: the same embedder).

    The agent's own model extracts the facts (no memory tools: the caller's model may be small).
    Each request's thread carries the caller's memory owner (the API key's account, narrowed by the
    request's ``user``), so nothing is shared across them.
    """
    from threadline.memory import ConversationMemory, UserPreferencesMemory, open_memory_store

    store = open_memory_store(path, shared_by_users=True)
    return agent.replace(
        context_providers=[
            *agent.context_providers,
            ConversationMemory(store),
            UserPreferencesMemory(store, extractor=agent.chat_client, tools=False),
        ]
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline serve``: blocks until the server stops."""
    if args.local == bool(args.agent):
        raise UsageError("serve: give an agent as module:attribute, or --local (not both)")
    if args.model is not None and not args.local:
        raise UsageError("serve: --model chooses the embedded model of --local; add --local")
    if not 0 <= args.drain_seconds < math.inf:
        raise UsageError(f"serve: --drain-seconds must be 0 or more, got {args.drain_seconds}")
    if not 0 < args.approval_doubt_seconds < math.inf:
        raise UsageError(
            "serve: --approval-doubt-seconds must be more than 0, got "
            f"{args.approval_doubt_seconds:g}"
        )
    try:
        from threadline.hosting import ServerConfig, serve
    except ImportError as exc:
        raise UsageError(
            f"serve needs the server extra: pip install 'threadline[server]' ({exc})"
        ) from exc
    env_keys = [k for k in os.environ.get("THREADLINE_API_KEYS", "").split(",") if k.strip()]
    keys = parse_api_keys([*args.api_key, *env_keys])
    agent = _local_agent(args.model) if args.local else load_agent(args.agent)
    if args.memory:
        agent = with_memory(agent, args.memory)
    config = ServerConfig(
        api_keys=keys,
        postgres_schema=args.postgres_schema,
        max_body_bytes=args.max_body_bytes,
        model_name=args.model_name,
        drain_seconds=args.drain_seconds,
        approval_doubt_seconds=args.approval_doubt_seconds,
        retention=args.retention,
    )
    # The library runs it (and warns when no key is configured): the command only parses.
    serve(
        agent,
        config=config,
        store=store_spec(args),
        migrate=args.migrate,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    return 0
