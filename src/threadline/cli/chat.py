"""``threadline chat``: talk to the embedded model; threads are saved and can be resumed.

One interactive loop serves ``chat`` and ``chat --group``: it talks to a *conversation*
(:class:`Conversation`: one assistant's thread here, a group chat in ``group_chat.py``) and keeps
it in the library (``_library.py``) with its ``serialize()`` state, written before the first turn,
after every turn and when the chat ends, so memory state survives ``--thread`` and ``/switch``.

The loop is synchronous (``input()`` keeps its usual Ctrl-C and line editing) and each reply runs
on one ``asyncio.Runner``. ``Runner.run`` turns Ctrl-C into cancelling the reply: the model stops
after the current token, the reply so far is dropped, and the thread keeps everything before it
(the agent stores the user's input before calling the model).

Replies are streamed through :func:`~threadline.cli._text.printable`: a model's escape sequences
never reach the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TextIO

from threadline.agents.chat_agent import ChatAgent
from threadline.cli import memory_cmd
from threadline.cli._approvals import answers, load_tools
from threadline.cli._legacy_groups import adopt_legacy_groups
from threadline.cli._library import ThreadLibrary, check_home, default_home
from threadline.cli._memory_commands import ChatMemory
from threadline.cli._progress import Spinner
from threadline.cli._render import format_history, format_thread_table
from threadline.cli._startup import open_client, read_piped_input, restore_ctrl_c
from threadline.cli._text import printable
from threadline.clients.base import ChatOptions
from threadline.clients.local import DEFAULT_MODEL, MODELS, LocalChatClient
from threadline.compaction import Compaction
from threadline.exceptions import ThreadlineError, ThreadStateError, UsageError
from threadline.memory import ContextProvider, MemoryStore
from threadline.threads.thread import AgentThread
from threadline.types.contents import FunctionApprovalRequestContent
from threadline.types.messages import ChatMessage

__all__ = ["Conversation", "add_parser", "check_owner", "converse", "run"]

DEFAULT_INSTRUCTIONS = "You are a helpful assistant. Answer clearly and briefly."
PROMPT = "you> "
HELP = """\
/new          start a new thread
/threads      list saved threads (* marks this one)
/switch ID    continue another thread (an unambiguous start of its id is enough)
/fork         branch this thread and continue on the branch
/history      show this thread's messages
/memory       what the chat remembers of you: /memory search WORDS, /memory forget ID|all
/help         show this help
/exit         leave (Ctrl-D works too); Ctrl-C stops a reply"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``chat`` and its options."""
    parser = subparsers.add_parser(
        "chat",
        help="chat with the embedded model (reads stdin when it is not a terminal)",
        description="Chat with a local GGUF model. Threads are saved under $THREADLINE_HOME.",
    )
    parser.add_argument(
        "--thread", metavar="ID", help="resume a saved thread (a unique start of its id will do)"
    )
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
        metavar="NAME[=ROLE],...",
        help="a group chat of agents with these names, each with an optional role, e.g. "
        '"poet=writes short poems, critic=finds one weakness" (resume with --thread)',
    )
    parser.add_argument(
        "--group-file",
        metavar="FILE",
        help="a group chat's agents from a file: one `name: role` (or `name=role`) per line",
    )
    parser.add_argument(
        "--tools",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="tools the model may call (a tool, function or list); those with approval_mode "
        "are asked about first: [y/N] in a terminal, refused when piped",
    )
    memory_cmd.add_user_option(parser)
    parser.set_defaults(handler=run)


class Conversation(Protocol):
    """What the chat loop talks to: one assistant's thread, or a group chat."""

    library: ThreadLibrary

    @property
    def thread_id(self) -> str:
        """The id of the current thread (or group chat) in the library."""
        ...

    def banner(self, state: str) -> str:
        """The first line the interactive chat prints (``state``: ``new`` or ``resumed``)."""
        ...

    def new(self) -> None:
        """Start a new thread (saved with its first message)."""
        ...

    async def resume(self, thread_id: str) -> None:
        """Continue a saved thread from its saved state.

        Raises:
            ThreadStateError: the state is missing or damaged; UsageError: it is another kind.
        """
        ...

    def reply(self, message: str | ChatMessage) -> AsyncIterator[tuple[str | None, str]]:
        """The answer to ``message``, streamed as ``(author or None, chunk)``."""
        ...

    def pending_approvals(self) -> list[FunctionApprovalRequestContent]:
        """The calls the last reply stopped at to ask about (empty: it finished)."""
        ...

    async def save(self) -> None:
        """Save the current thread's ``serialize()`` state in the library."""
        ...

    async def end(self) -> None:
        """The chat is over: let memory finish (summaries), then save."""
        ...


def check_owner(saved_user: str | None, user: str | None, thread_id: str) -> None:
    """Refuse to resume someone else's thread with one's own memory.

    Raises:
        UsageError: the thread belongs to another user than ``--user`` names.
    """
    if saved_user is not None and user is not None and saved_user != user:
        raise UsageError(
            f"thread {thread_id!r} belongs to user {saved_user!r}, not {user!r}; resume it with "
            f"--user {saved_user!r} (or --no-memory)"
        )


class _AgentConversation:
    """A chat with one assistant: an ``AgentThread`` restored from its saved state."""

    def __init__(
        self, agent: ChatAgent, library: ThreadLibrary, model: str, options: ChatOptions
    ) -> None:
        self.agent = agent
        self.library = library
        self.model = model
        self.options = options
        self.memory = bool(agent.context_providers)
        self.thread: AgentThread = library.new_thread()
        self._saved = False
        self._asked: list[FunctionApprovalRequestContent] = []

    @property
    def thread_id(self) -> str:
        return self.thread.id

    def banner(self, state: str) -> str:
        return f"threadline chat - model {self.model} - {state} thread {self.thread.id}"

    def new(self) -> None:
        self.thread = self.library.new_thread()
        self._saved = False

    async def resume(self, thread_id: str) -> None:
        if await self.library.is_group(thread_id):
            raise UsageError(
                f"{thread_id!r} is a group chat; continue it with "
                f"`threadline chat --group NAMES --thread {thread_id}`"
            )
        state = await self.library.saved_state(thread_id)
        try:
            thread = await self.agent.deserialize_thread(state)
        except ThreadStateError as exc:
            raise ThreadStateError(
                f"the saved state of thread {thread_id!r} is damaged: {exc}; it was not resumed"
            ) from None
        check_owner(thread.user_id, self.library.user_id, thread_id)
        if thread.user_id is None:  # a thread nobody's memory knows yet: it becomes this user's
            thread.user_id = self.library.user_id
        self.thread = thread
        self._saved = True

    async def reply(self, message: str | ChatMessage) -> AsyncIterator[tuple[str | None, str]]:
        if not self._saved:  # the state exists before the first message that needs it
            await self.save()
        self._asked = []
        async for update in self.agent.run_stream(message, thread=self.thread, **self.options):
            self._asked += (c for c in update.contents if type(c) is FunctionApprovalRequestContent)
            yield None, update.text

    def pending_approvals(self) -> list[FunctionApprovalRequestContent]:
        return self._asked

    async def save(self) -> None:
        await self.library.save_state(await self.thread.serialize())
        self._saved = True

    async def end(self) -> None:
        if self.memory:
            await self.thread.end()  # summarize this chat, finish learning from it
        if self._saved:
            await self.save()


class _Session:
    """One chat session: the conversation, the event loop and where output goes."""

    def __init__(
        self,
        runner: asyncio.Runner,
        conversation: Conversation,
        client: LocalChatClient,
        out: TextIO,
    ) -> None:
        self.runner = runner
        self.conversation = conversation
        self.library = conversation.library
        self.client = client
        self.out = out
        self.memory: ChatMemory | None = None
        self.interactive = True
        """Whether a person can be asked (a terminal); piped chats refuse guarded calls."""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def reply(self, text: str, spinner: Spinner) -> None:
        """Stream the answer to ``text``, asking about calls that need approval.

        The spinner runs until the first token. Every chunk is made printable on its own: a
        control character is escaped as it arrives, so an escape sequence split across chunks
        is harmless too. A group chat's speakers are labelled ``[name]``. A call that needs
        approval stops the turn; the answers go as the next turn (:mod:`._approvals`).
        """
        message: str | ChatMessage = text
        while True:
            await self._stream(message, spinner)
            asked = self.conversation.pending_approvals()
            if not asked:
                break
            message = answers(asked, interactive=self.interactive)
        await self.conversation.save()
        if self.memory is not None:  # learn from this turn now, so the next one never waits
            spinner.start("remembering...")
            try:
                await self.memory.learn(spinner.stop)
            finally:
                spinner.stop()

    async def _stream(self, message: str | ChatMessage, spinner: Spinner) -> None:
        """One turn, streamed."""
        spinner.start("thinking...")
        speaker: str | None = None
        try:
            async for author, chunk in self.conversation.reply(message):
                if not chunk:
                    continue
                spinner.stop()
                if author is not None and author != speaker:
                    speaker = author
                    self.out.write(f"\n[{printable(author, multiline=False)}] ")
                self.out.write(printable(chunk))
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
            "/memory": self._memory,
            "/help": lambda _: self.say(HELP),
        }
        if name in ("/exit", "/quit"):
            return False
        handler = handlers.get(name)
        if handler is None:
            self.say(f"unknown command {printable(name, multiline=False)!r}; /help lists them")
            return True
        result = handler(arg)
        if asyncio.iscoroutine(result):
            await result
        return True

    async def _leave(self) -> None:
        """Save the current thread before another takes its place (if it was ever saved)."""
        if await self.library.exists(self.conversation.thread_id):
            await self.conversation.save()

    async def _new(self, _: str) -> None:
        await self._leave()
        self.conversation.new()
        self.say(f"new thread {self.conversation.thread_id}")

    async def _threads(self, _: str) -> None:
        current = self.conversation.thread_id
        for line in format_thread_table(await self.library.summaries(), current=current):
            self.say(line)

    async def _switch(self, arg: str) -> None:
        if not arg:
            self.say("usage: /switch ID")
            return
        thread_id = await self.library.resolve(arg)
        await self._leave()
        await self.conversation.resume(thread_id)
        count = len(await self.library.messages(thread_id))
        self.say(f"switched to thread {thread_id} ({count} messages)")

    async def _fork(self, _: str) -> None:
        parent = self.conversation.thread_id
        if not await self.library.exists(parent):
            self.say("nothing to fork yet: this thread has no messages")
            return
        await self.conversation.save()
        child = await self.library.fork(parent)
        await self.conversation.resume(child)
        self.say(f"forked {parent} -> {child}; now on the fork")

    async def _memory(self, arg: str) -> None:
        if self.memory is None:
            self.say("memory is off for this chat (started with --no-memory)")
            return
        await self.memory.command(arg)

    async def _history(self, _: str) -> None:
        for line in format_history(await self.library.messages(self.conversation.thread_id)):
            self.say(line)


def _interactive(session: _Session, resumed: bool) -> int:
    spinner = Spinner()
    session.runner.run(session.load(spinner))
    state = "resumed" if resumed else "new"
    session.say(
        f"{session.conversation.banner(state)}\n"
        "/help for commands, /exit to leave, Ctrl-C stops a reply"
    )
    if session.memory is not None:
        session.say(session.memory.banner())
        session.runner.run(session.memory.start())
    else:
        session.say("memory: off")
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
            session.runner.run(session.conversation.save())
        except ThreadlineError as exc:
            session.say(f"error: {printable(str(exc))}")


def converse(
    conversation: Conversation,
    client: LocalChatClient,
    *,
    interactive: bool,
    text: str,
    resume: str | None,
    memory: MemoryStore | None,
    learning: ChatMemory | None = None,
) -> int:
    """Run a chat or group chat to its end: resume, talk (a terminal, or one piped message), save.

    The one loop of ``chat`` and ``chat --group``. ``memory`` is closed at the end, after the
    conversation has finished with it; ``learning`` says what the chat learns and remembers.
    """
    with asyncio.Runner() as runner:
        session = _Session(runner, conversation, client, sys.stdout)
        session.memory = learning
        session.interactive = interactive
        started = False
        try:
            runner.run(adopt_legacy_groups(conversation.library))
            if resume:
                thread_id = runner.run(conversation.library.resolve(resume))
                runner.run(conversation.resume(thread_id))
            started = True
            if interactive:
                return _interactive(session, resumed=bool(resume))
            runner.run(session.reply(text, Spinner(enabled=False)))
            print(f"thread: {conversation.thread_id}", file=sys.stderr)
            return 0
        finally:
            if started and learning is not None:  # summarize this chat, finish learning from it
                runner.run(learning.finish(conversation.end))
            elif started:
                runner.run(conversation.end())
            if memory is not None:
                runner.run(memory.aclose())
            runner.run(client.aclose())


def chat_memory(
    store: MemoryStore | None,
    user: str | None,
    providers: Sequence[ContextProvider],
    *,
    interactive: bool,
) -> ChatMemory | None:
    """What a chat with memory says it learns (``remembered: ...``) and ``/memory``; else None."""
    if store is None or user is None:
        return None
    return ChatMemory(store, user, providers, out=sys.stdout if interactive else sys.stderr)


def options_of(args: argparse.Namespace) -> ChatOptions:
    """The model options given on the command line."""
    options = ChatOptions(max_tokens=args.max_tokens)
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    return options


def run(args: argparse.Namespace) -> int:
    """Entry point of ``threadline chat``."""
    if args.group or args.group_file:
        from threadline.cli.group_chat import run_group

        return run_group(args)
    home = check_home(args.home or default_home())
    library = ThreadLibrary(home)
    user = memory_cmd.memory_user(args)
    piped = read_piped_input()
    client = open_client(args) if piped is not None else None
    if piped is None or client is None:
        return 2
    interactive, text = piped
    if interactive:
        restore_ctrl_c()
    store = memory_cmd.open_store(home) if user is not None else None
    providers = memory_cmd.chat_memory(store, client) if store is not None else []
    library.user_id = user
    try:
        tools = load_tools(args.tools)
    except ThreadlineError as exc:
        print(f"threadline chat: {exc}", file=sys.stderr)
        return 2
    agent = ChatAgent(
        client,
        args.system or DEFAULT_INSTRUCTIONS,
        context_providers=providers,
        tools=tools,
        chat_message_store_factory=library.store,
        compaction=Compaction(),  # a long chat is summarized, never cut (docs/chat.md)
    )
    conversation = _AgentConversation(agent, library, client.model_path.name, options_of(args))
    return converse(
        conversation,
        client,
        interactive=interactive,
        text=text,
        resume=args.thread,
        memory=store,
        learning=chat_memory(store, user, providers, interactive=interactive),
    )
