"""``threadline chat --group "poet=writes short poems, critic=finds one weakness"``: a group chat.

Every user line is shown to every participant, then each speaks once, in turn (round robin), its
answer streamed and labelled with its name. A role after a name becomes that agent's
instructions, so agents differ. The group chat lives in the thread library like any chat (see
``_library.py``: its transcript, each participant's thread and its ``serialize()`` state, in
``threads.db``), runs in the same loop as ``chat`` (``chat.converse``) with the same commands,
and with ``--user`` every participant has the user's memory (the library's rule: the user talks
to all of them).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator
from pathlib import Path

from threadline.agents.chat_agent import ChatAgent
from threadline.cli import memory_cmd
from threadline.cli._library import ThreadLibrary, check_home, default_home
from threadline.cli._saved_state import is_group_state
from threadline.cli._startup import open_client, read_piped_input, restore_ctrl_c
from threadline.cli._text import printable
from threadline.cli.chat import chat_memory, check_owner, converse, options_of
from threadline.clients.base import RunOptions
from threadline.clients.local import LocalChatClient
from threadline.compaction import Compaction
from threadline.exceptions import ThreadStateError, UsageError
from threadline.multiagent.group_chat import GroupChat
from threadline.multiagent.thread import MultiAgentThread
from threadline.types.contents import FunctionApprovalRequestContent
from threadline.types.messages import ChatMessage

__all__ = ["parse_group", "read_group_file", "run_group"]

MAX_NAME = 32
MAX_ROLE = 500
MAX_GROUP_FILE = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NEXT_AGENT = re.compile(r",(?=\s*[A-Za-z0-9_-]*\s*(?:=|,|$))")
"""A comma that starts the next agent (a name, then ``=``, a comma or the end): a role may
itself hold commas ("writes short, sharp poems")."""


def _agent(entry: str, source: str) -> tuple[str, str]:
    name, sep, role = entry.partition("=")
    name, role = name.strip(), role.strip()
    shown = printable(entry.strip(), multiline=False)
    if not name:
        raise UsageError(f"{source}: an agent has no name ({shown!r}); give name or name=role")
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise UsageError(
            f"{source}: agent name {printable(name, multiline=False)!r} must be 1 to {MAX_NAME} "
            "ASCII letters, digits, '_' or '-'"
        )
    if sep and not role:
        raise UsageError(f"{source}: agent {name!r} has an empty role; drop the '=' or give one")
    if _CONTROL.search(role):
        raise UsageError(
            f"{source}: the role of {name!r} holds a line break or control character "
            f"('{printable(role, multiline=False)}'); write it on one line of plain text"
        )
    if len(role) > MAX_ROLE:
        raise UsageError(
            f"{source}: the role of {name!r} has {len(role)} characters, over {MAX_ROLE}"
        )
    return name, role


def _checked(agents: list[tuple[str, str]], source: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name, role in agents:
        if name in roles:
            raise UsageError(f"{source}: two agents are named {name!r}; names must differ")
        roles[name] = role
    if len(roles) < 2:
        raise UsageError(
            f"{source} needs two or more agents, got {len(roles)}; e.g. --group "
            '"poet=writes short poems, critic=finds one weakness"'
        )
    return roles


def parse_group(spec: str) -> dict[str, str]:
    """``--group``'s agents: ``{name: role}`` (``""`` when none is given), in order.

    Raises:
        UsageError: an empty or invalid name, a duplicate, a role with line breaks or control
            characters, or fewer than two agents; one line naming the problem.
    """
    if _CONTROL.search(spec):
        raise UsageError(
            f"--group holds a line break or control character "
            f"('{printable(spec, multiline=False)}'); give the agents on one line"
        )
    return _checked([_agent(e, "--group") for e in _NEXT_AGENT.split(spec)], "--group")


def read_group_file(path: str) -> dict[str, str]:
    """``--group-file``'s agents: one ``name: role`` or ``name=role`` per line; ``#`` comments.

    Raises:
        UsageError: the file cannot be read, is too large, or any line is invalid (named).
    """
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_GROUP_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read --group-file {path!r}: {exc.strerror or exc}") from None
    if len(raw) > MAX_GROUP_FILE:
        raise UsageError(f"--group-file {path!r} is over {MAX_GROUP_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--group-file {path!r} is not UTF-8 text") from None
    agents: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, rest = line.partition(":")
        entry = f"{name}={rest}" if colon and "=" not in name else line
        agents.append(_agent(entry, f"--group-file {path}, line {number}"))
    return _checked(agents, f"--group-file {path}")


def _agents(
    roles: dict[str, str],
    client: LocalChatClient,
    system: str | None,
    options: RunOptions,
    library: ThreadLibrary,
) -> list[ChatAgent]:
    agents: list[ChatAgent] = []
    for name, role in roles.items():
        others = ", ".join(n for n in roles if n != name)
        instructions = f"You are {name}, in a group chat with the user and {others}."
        if role:
            instructions += f" Your role: {role}."
        instructions += f" Speak only as {name}, briefly, and build on what the others said."
        if system:
            instructions += "\n" + system
        agents.append(
            ChatAgent(
                client,
                instructions,
                name=name,
                default_options=options,
                chat_message_store_factory=library.store,
                compaction=Compaction(),  # each agent's long history is summarized, never cut
            )
        )
    return agents


class _GroupConversation:
    """A group chat in the library: transcript ``<id>``, participants ``<id>.<name>``."""

    def __init__(self, chat: GroupChat, library: ThreadLibrary) -> None:
        self.chat = chat
        self.library = library
        self.thread = self._new_thread()
        self._saved = False

    def _new_thread(self) -> MultiAgentThread:
        thread = self.chat.get_new_thread(user_id=self.library.user_id)
        # The library's layout: every store named by the group's id (see _library.py).
        thread.transcript = self.library.store(thread.id)
        for own in thread.participants.values():
            own.message_store = self.library.store(own.id)
        return thread

    @property
    def thread_id(self) -> str:
        return self.thread.id

    def banner(self, state: str) -> str:
        names = ", ".join(self.chat.agents)
        return f"threadline group chat - {names} - {state} thread {self.thread.id}"

    def new(self) -> None:
        self.thread = self._new_thread()
        self._saved = False

    async def resume(self, thread_id: str) -> None:
        state = await self.library.saved_state(thread_id)
        if not is_group_state(state):
            raise UsageError(
                f"{thread_id!r} is a chat with one assistant, not a group chat; continue it "
                f"without --group: `threadline chat --thread {thread_id}`"
            )
        try:
            thread = await self.chat.deserialize_thread(state)
        except ThreadStateError as exc:
            raise ThreadStateError(f"group chat {thread_id!r} cannot be resumed: {exc}") from None
        check_owner(thread.user_id, self.library.user_id, thread_id)
        if thread.user_id is None and self.library.user_id is not None:
            thread.user_id = self.library.user_id  # nobody's yet: it becomes this user's
            for own in thread.participants.values():
                own.user_id = self.library.user_id
        self.thread = thread
        self._saved = True

    async def reply(self, message: str | ChatMessage) -> AsyncIterator[tuple[str | None, str]]:
        if not self._saved:
            await self.save()
        async for update in self.chat.run_stream(message, thread=self.thread):
            yield update.author_name or "?", update.text

    def pending_approvals(self) -> list[FunctionApprovalRequestContent]:
        """None: the agents of a command-line group chat have no tools."""
        return []

    async def save(self) -> None:
        await self.library.save_state(await self.thread.serialize())
        self._saved = True

    async def end(self) -> None:
        if self.chat.context_providers:
            for own in self.thread.participants.values():
                await own.end()
        if self._saved:
            await self.save()


def run_group(args: argparse.Namespace) -> int:
    """Entry point of ``threadline chat --group`` / ``--group-file``."""
    if args.group and args.group_file:
        raise UsageError("give the agents with --group or --group-file, not both")
    roles = read_group_file(args.group_file) if args.group_file else parse_group(args.group)
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
    agents = _agents(roles, client, args.system, options_of(args), library)
    chat = GroupChat(
        agents,
        max_rounds=len(roles),
        context_providers=providers,
        transcript_store_factory=library.store,
    )
    return converse(
        _GroupConversation(chat, library),
        client,
        interactive=interactive,
        text=text,
        resume=args.thread,
        memory=store,
        learning=chat_memory(store, user, providers, interactive=interactive),
    )
