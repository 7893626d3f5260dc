"""How the command prints messages and thread lists: plain text, one line per item."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from threadline.cli._library import ThreadSummary
from threadline.cli._text import printable
from threadline.types.contents import (
    CompactionContent,
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
    """``who: text``, with calls, results and attachments spelled out; control codes escaped."""
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
        elif isinstance(content, CompactionContent):
            chained = " and the summary before" if content.previous else ""
            parts.insert(0, f"[summary of {len(content.replaces)} earlier messages{chained}]")
    who = message.author_name if message.role == Role.ASSISTANT and message.author_name else None
    who = printable(who, multiline=False) if who else _WHO[message.role]
    return f"{who}: {printable(' '.join(p for p in parts if p))}"


def format_history(messages: Sequence[ChatMessage]) -> Iterable[str]:
    """Numbered lines, one per message."""
    if not messages:
        yield "(no messages yet)"
    for index, message in enumerate(messages, 1):
        yield f"[{index}] {format_message(message)}"


def format_thread_table(
    summaries: Sequence[ThreadSummary], *, current: str | None = None
) -> Iterable[str]:
    """An aligned table of threads; the current one is starred, unreadable ones say why."""
    if not summaries:
        yield "(no saved threads)"
        return
    ids = [printable(s.thread_id, multiline=False) for s in summaries]
    width = max(len(i) for i in ids)
    yield f"  {'ID'.ljust(width)}  MSGS  UPDATED           TITLE"
    for s, shown_id in zip(summaries, ids, strict=True):
        mark = "*" if s.thread_id == current else " "
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
        fork = f" (fork of {printable(s.parent_id, multiline=False)})" if s.parent_id else ""
        title = f"[unreadable: {s.error}]" if s.error else s.title
        if s.participants:
            title = f"[group: {', '.join(s.participants)}] {title}"
        title = printable(title, multiline=False)
        yield f"{mark} {shown_id.ljust(width)}  {s.messages:>4}  {updated}  {title}{fork}"
