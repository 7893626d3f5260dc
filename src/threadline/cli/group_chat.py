"""``threadline chat --group a,b,c``: watch a group chat of embedded agents in the terminal.

Every user line is shown to every participant, then each speaks once, in turn (round robin), its
answer streamed and labelled with its name. The whole group conversation is saved after each turn
as one JSON file under ``$THREADLINE_HOME/groups/`` and resumed with ``--thread ID``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from threadline.agents.chat_agent import ChatAgent
from threadline.cli._library import default_home
from threadline.cli._startup import open_client, read_piped_input, restore_ctrl_c
from threadline.clients.base import RunOptions
from threadline.clients.local import LocalChatClient
from threadline.exceptions import ThreadlineError, UsageError
from threadline.multiagent.group_chat import GroupChat
from threadline.multiagent.thread import GroupChatThread

__all__ = ["run_group"]

PROMPT = "you> "


def _names(spec: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise UsageError(
            f"--group needs two or more distinct names separated by commas, got {spec!r}; "
            "e.g. --group poet,critic,editor"
        )
    return names


def _agents(
    names: list[str], client: LocalChatClient, system: str | None, options: RunOptions
) -> list[ChatAgent]:
    agents: list[ChatAgent] = []
    for name in names:
        others = ", ".join(n for n in names if n != name)
        instructions = (
            f"You are {name}, in a group chat with the user and {others}. Speak only as {name}, "
            "briefly, and build on what the others said."
        )
        if system:
            instructions += "\n" + system
        agents.append(ChatAgent(client, instructions, name=name, default_options=options))
    return agents


class _GroupSession:
    def __init__(self, chat: GroupChat, folder: Path, out: TextIO) -> None:
        self.chat = chat
        self.folder = folder
        self.out = out
        self.thread: GroupChatThread = chat.get_new_thread()

    def _path(self, thread_id: str) -> Path:
        return self.folder / f"{thread_id}.json"

    async def resume(self, thread_id: str) -> None:
        path = self._path(thread_id)
        if not path.is_file():
            raise UsageError(
                f"no saved group chat {thread_id!r} in {self.folder}; start one without --thread"
            )
        self.thread = await self.chat.deserialize_thread(json.loads(path.read_text()))

    async def turn(self, text: str) -> None:
        """Send ``text``; stream every participant's answer with its label; save the chat."""
        speaker: str | None = None
        async for update in self.chat.run_stream(text, thread=self.thread):
            if update.author_name != speaker and update.text:
                speaker = update.author_name
                self.out.write(f"\n[{speaker}] ")
            self.out.write(update.text)
            self.out.flush()
        self.out.write("\n")
        self.out.flush()
        await self.save()

    async def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path(self.thread.id).with_suffix(".tmp")
        tmp.write_text(json.dumps(await self.thread.serialize()))
        tmp.replace(self._path(self.thread.id))  # never a half-written file


def run_group(args: argparse.Namespace) -> int:
    """Entry point of ``threadline chat --group``."""
    try:
        names = _names(args.group)
    except UsageError as exc:
        print(f"threadline chat: {exc}", file=sys.stderr)
        return 2
    piped = read_piped_input()
    client = open_client(args) if piped is not None else None
    if piped is None or client is None:
        return 2
    interactive, text = piped
    if interactive:
        restore_ctrl_c()
    options = RunOptions(max_tokens=args.max_tokens)
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    chat = GroupChat(_agents(names, client, args.system, options), max_rounds=len(names))
    folder = (args.home or default_home()) / "groups"
    with asyncio.Runner() as runner:
        session = _GroupSession(chat, folder, sys.stdout)
        try:
            if args.thread:
                runner.run(session.resume(args.thread))
            if not interactive:
                runner.run(session.turn(text))
                print(f"thread: {session.thread.id}", file=sys.stderr)
                return 0
            state = "resumed" if args.thread else "new"
            print(
                f"threadline group chat - {', '.join(names)} - {state} thread {session.thread.id}"
                "\n/exit to leave; Ctrl-C stops the current turn",
                flush=True,
            )
            while True:
                try:
                    line = input(PROMPT).strip()
                except EOFError:
                    print()
                    return 0
                if line in ("/exit", "/quit"):
                    return 0
                if not line:
                    continue
                try:
                    runner.run(session.turn(line))
                except KeyboardInterrupt:
                    print("\n[turn stopped; the chat is kept as of its last complete answer]")
                except ThreadlineError as exc:
                    print(f"error: {exc}")
        finally:
            runner.run(client.aclose())
