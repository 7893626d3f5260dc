"""How the command prints messages and thread lists: plain text, one line per item."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from threadline.cli._library import ThreadSummary
from threadline.types.contents import (
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["format_history", "format_message", "format_thread_table"]

_WHO = {Role.USER: "you", Role.ASSISTANT: "assistant", Role.SYSTEM: "system", Role.TOOL: "tool"}


def format_message(message: ChatMessage) -> str:
    """``who: text``, with calls, results and attachments spelled out."""
    parts: list[str] = []
    for content in message.contents:
        if isinstance(content, TextContent):
            parts.append(content.text)
        elif isinstance(content, FunctionCallContent):
            parts.append(f"[calls {content.name}({content.arguments})]")
        elif isinstance(content, FunctionResultContent):
            if content.exception is not None:
                parts.append(f"[call {content.call_id} failed: {content.exception}]")
            else:
                parts.append(f"[call {content.call_id} returned {json.dumps(content.result)}]")
        elif isinstance(content, DataContent):
            parts.append(f"[{content.media_type} data]")
        elif isinstance(content, UriContent):
            parts.append(f"[{content.uri}]")
        elif isinstance(content, ErrorContent):
            parts.append(f"[error: {content.message}]")
    who = message.author_name if message.role == Role.ASSISTANT and message.author_name else None
    return f"{who or _WHO[message.role]}: {' '.join(p for p in parts if p)}"


def format_history(messages: Sequence[ChatMessage]) -> Iterable[str]:
    """Numbered lines, one per message."""
    if not messages:
        yield "(no messages yet)"
    for index, message in enumerate(messages, 1):
        yield f"[{index}] {format_message(message)}"


def format_thread_table(
    summaries: Sequence[ThreadSummary], *, current: str | None = None
) -> Iterable[str]:
    """An aligned table of threads; the current one is starred."""
    if not summaries:
        yield "(no saved threads)"
        return
    width = max(len(s.thread_id) for s in summaries)
    yield f"  {'ID'.ljust(width)}  MSGS  UPDATED           TITLE"
    for s in summaries:
        mark = "*" if s.thread_id == current else " "
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
        fork = f" (fork of {s.parent_id})" if s.parent_id else ""
        yield f"{mark} {s.thread_id.ljust(width)}  {s.messages:>4}  {updated}  {s.title}{fork}"
