"""``threadline chat``: talk to the embedded model; threads are saved and can be resumed.

The loop is synchronous (``input()`` keeps its usual Ctrl-C and line editing) and each reply runs
on one ``asyncio.Runner``. ``Runner.run`` turns Ctrl-C into cancelling the reply: the model stops
after the current token, the reply so far is dropped, and the thread keeps everything before it
(the agent stores the user's input before calling the model).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable
from typing import TextIO

from threadline.agents.chat_agent import ChatAgent
from threadline.cli import memory_cmd
from threadline.cli._library import ThreadLibrary, default_home
from threadline.cli._progress import Spinner
from threadline.cli._render import format_history, format_thread_table
from threadline.cli._startup import open_client, read_piped_input
from threadline.clients.base import ChatOptions
from threadline.clients.local import DEFAULT_MODEL, MODELS, LocalChatClient
from threadline.compaction import Compaction
from threadline.exceptions import ThreadlineError
from threadline.threads.thread import AgentThread

__all__ = ["add_parser", "run"]

DEFAULT_INSTRUCTIONS = "You are a helpful assistant. Answer clearly and briefly."
PROMPT = "you> "
HELP = """\
/new          start a new thread
/threads      list saved threads (* marks this one)
/switch ID    continue another thread (an unambiguous start of its id is enough)
/fork         branch this thread and continue on the branch
/history      show this thread's messages
/help         show this help
/exit         leave (Ctrl-D works too); Ctrl-C stops a reply"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``chat`` and its options."""
    parser = subparsers.add_parser(
        "chat",
        help="chat with the embedded model (reads stdin when it is not a terminal)",
        description="Chat with a local GGUF model. Threads are saved under $THREADLINE_HOME.",
    )
    parser.add_argument("--thread", metavar="ID", help="resume a saved thread")
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help=f"{' | '.join(MODELS)} or a GGUF file (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--system", metavar="TEXT", help="the assistant's instructions")
    parser.add_argument(
        "--ctx", type=int, metavar="N", help="context window in tokens (8192 for the Qwen models)"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=512, metavar="N", help="reply length limit (512)"
    )
    parser.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    parser.add_argument(
        "--seed", type=int, metavar="N", help="sampling seed, for repeatable replies"
    )
    parser.add_argument(
        "--group",
        metavar="A,B,C",
        help="a group chat of agents with these names, each labelled (resume with --thread)",
    )
    memory_cmd.add_user_option(parser)
    parser.set_defaults(handler=run)


class _Session:
    """One chat session: the agent, the current thread and where output goes."""

    def __init__(
        self,
        runner: asyncio.Runner,
        agent: ChatAgent,
        client: LocalChatClient,
        library: ThreadLibrary,
        options: ChatOptions,
        out: TextIO,
    ) -> None:
        self.runner = runner
        self.agent = agent
        self.client = client
        self.library = library
        self.options = options
        self.out = out
        self.thread: AgentThread = library.new_thread()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def reply(self, text: str, spinner: Spinner) -> None:
        """Stream the agent's answer to ``text``; the spinner runs until the first token."""
        spinner.start("thinking...")
        try:
            async for update in self.agent.run_stream(text, thread=self.thread, **self.options):
                chunk = update.text
                if chunk:
                    spinner.stop()
                    self.out.write(chunk)
                    self.out.flush()
        finally:
            spinner.stop()
        self.out.write("\n")
        self.out.flush()

    async def load(self, spinner: Spinner) -> None:
        spinner.start(f"loading {self.client.model_path.name}...")
        try:
            await self.client.load()
        finally:
            spinner.stop()

    # -- in-chat commands ------------------------------------------------------------------

    async def command(self, line: str) -> bool:
        """Run a ``/command``; returns False when the chat should end."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        handlers: dict[str, Callable[[str], object]] = {
            "/new": self._new,
            "/threads": self._threads,
            "/switch": self._switch,
            "/fork": self._fork,
            "/history": self._history,
            "/help": lambda _: self.say(HELP),
        }
        if name in ("/exit", "/quit"):
            return False
        handler = handlers.get(name)
        if handler is None:
            self.say(f"unknown command {name!r}; /help lists them")
            return True
        result = handler(arg)
        if asyncio.iscoroutine(result):
            await result
        return True

    def _new(self, _: str) -> None:
        self.thread = self.library.new_thread()
        self.say(f"new thread {self.thread.id}")

    async def _threads(self, _: str) -> None:
        for line in format_thread_table(await self.library.summaries(), current=self.thread.id):
            self.say(line)

    async def _switch(self, arg: str) -> None:
        if not arg:
            self.say("usage: /switch ID")
            return
        thread_id = await self.library.resolve(arg)
        self.thread = self.library.thread(thread_id)
        count = len(await self.library.messages(thread_id))
        self.say(f"switched to thread {thread_id} ({count} messages)")

    async def _fork(self, _: str) -> None:
        if not await self.library.exists(self.thread.id):
            self.say("nothing to fork yet: this thread has no messages")
            return
        parent = self.thread.id
        child = await self.library.fork(parent)
        self.thread = self.library.thread(child)
        self.say(f"forked {parent} -> {child}; now on the fork")

    async def _history(self, _: str) -> None:
        for line in format_history(await self.library.messages(self.thread.id)):
            self.say(line)


def _interactive(session: _Session, resumed: bool) -> int:
    spinner = Spinner()
    session.runner.run(session.load(spinner))
    state = "resumed" if resumed else "new"
    session.say(
        f"threadline chat - model {session.client.model_path.name} - {state} thread "
        f"{session.thread.id}\n/help for commands, /exit to leave, Ctrl-C stops a reply"
    )
    try:  # line editing and history for input(), where the platform has it
        importlib.import_module("readline")
    except ImportError:  # pragma: no cover
        pass
    while True:
        try:
            line = input(PROMPT).strip()
        except EOFError:
            session.say("")
            return 0
        except KeyboardInterrupt:
            session.say("\n(/exit or Ctrl-D to leave)")
            continue
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not session.runner.run(session.command(line)):
                    return 0
                continue
            session.runner.run(session.reply(line, spinner))
        except KeyboardInterrupt:
            session.say("\n[reply stopped; the thread is kept]")
        except ThreadlineError as exc:
            session.say(f"error: {exc}")


def _one_shot(session: _Session, text: str) -> int:
    session.runner.run(session.reply(text, Spinner(enabled=False)))
    print(f"thread: {session.thread.id}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline chat``."""
    if args.group:
        from threadline.cli.group_chat import run_group

        return run_group(args)
    home = args.home or default_home()
    library = ThreadLibrary(home)
    piped = read_piped_input()
    client = open_client(args) if piped is not None else None
    if piped is None or client is None:
        return 2
    interactive, text = piped
    user = memory_cmd.memory_user(args)
    store = memory_cmd.open_store(home) if user is not None else None
    providers = memory_cmd.chat_memory(store, client) if store is not None else []
    library.user_id = user
    agent = ChatAgent(
        client,
        args.system or DEFAULT_INSTRUCTIONS,
        context_providers=providers,
        compaction=Compaction(),  # a long chat is summarized, never cut (docs/chat.md)
    )
    options = ChatOptions(max_tokens=args.max_tokens)
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    with asyncio.Runner() as runner:
        session = _Session(runner, agent, client, library, options, sys.stdout)
        try:
            if args.thread:
                session.thread = library.thread(runner.run(library.resolve(args.thread)))
            if interactive:
                return _interactive(session, resumed=bool(args.thread))
            return _one_shot(session, text)
        finally:
            if store is not None:  # summarize this chat, finish learning from it
                runner.run(session.thread.end())
                runner.run(store.aclose())
            runner.run(client.aclose())
