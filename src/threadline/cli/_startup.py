"""The start of ``threadline chat`` and ``chat --group``, shared.

Before the first message both check the options, read piped input, and open the model
(assembling its file on first use, with progress).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TextIO

from threadline.clients.local import LocalChatClient, resolve_model

__all__ = ["open_client", "read_piped_input", "restore_ctrl_c"]


class _AssemblyProgress:
    """Shows ``assembling the model's file (first use only)... NN%`` while a model file is made."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent // 10 != self.shown // 10 or percent == 100:
            if self.shown < 0:
                self.out.write("assembling the model's file (first use only)...")
            self.out.write(f" {percent}%" if percent != self.shown else "")
            if percent == 100:
                self.out.write("\n")
            self.out.flush()
            self.shown = percent


def read_piped_input() -> tuple[bool, str] | None:
    """``(interactive, text)``: a terminal means an interactive chat, piped stdin one message.

    ``None`` (after saying why) when piped stdin was empty.
    """
    if sys.stdin.isatty():
        return True, ""
    text = sys.stdin.read().strip()
    if not text:
        print("threadline chat: nothing to send: stdin was empty", file=sys.stderr)
        return None
    return False, text


def open_client(args: argparse.Namespace) -> LocalChatClient | None:
    """The model client of ``--model``/``--ctx``/``--max-tokens``, its file ready.

    A named model's file is assembled on first use, with progress on stderr, before the chat
    starts. ``None`` (after saying why) on a bad option.
    """
    if args.max_tokens <= 0 or (args.ctx is not None and args.max_tokens >= args.ctx):
        print(
            f"threadline chat: --max-tokens ({args.max_tokens}) must be positive and smaller "
            f"than --ctx ({args.ctx})",
            file=sys.stderr,
        )
        return None
    try:
        client = LocalChatClient(args.model, n_ctx=args.ctx, max_tokens=args.max_tokens)
        resolve_model(args.model, progress=_AssemblyProgress(sys.stderr))
    except ValueError as exc:  # a bad --ctx or --max-tokens
        print(f"threadline chat: {exc}", file=sys.stderr)
        return None
    return client


def restore_ctrl_c() -> None:
    """Let Ctrl-C stop a reply even when the chat was started with SIGINT ignored.

    A shell starts background jobs (``nohup ... &``, a non-interactive script) with SIGINT
    ignored, and children inherit that; ``asyncio.Runner`` then installs no handler, so Ctrl-C
    (or a test's SIGINT) could never stop a reply (issue 21: the README's test command hung when
    run in the background). An interactive chat is talking to a person at a terminal, who
    expects Ctrl-C to work, so it takes back Python's default handler.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
