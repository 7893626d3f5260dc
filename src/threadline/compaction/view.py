"""What a model is sent of a compacted thread: the latest summary in place of what it replaces.

A pure projection of the stored messages. Compaction never deletes or rewrites: a summary is an
ordinary message appended to the thread, marked with a :class:`CompactionContent` naming the
messages it stands for (and the summary it continues). So everything stays readable, and a fork
before the summary is the original history; only requests are built from this view.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.history import group_tool_exchanges
from threadline.types.contents import CompactionContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["compacted_view", "split_turns", "summary_mark"]


def summary_mark(message: ChatMessage) -> CompactionContent | None:
    """The message's compaction mark, or ``None`` when it is not a summary."""
    if message.plain_text is not None:  # one text part: most messages, never a summary
        return None
    for content in message.contents:
        if type(content) is CompactionContent:
            return content
    return None


def compacted_view(messages: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
    """``messages`` as a model should see them: the latest summary, then what it does not replace.

    The summary comes first (it stands for the oldest part of the conversation), followed by the
    messages it does not replace, in their order: those kept when it was made, and everything
    written after it. Earlier summaries of its chain (``previous``) and what they replaced stay
    out too. Without a summary, ``messages`` itself is returned (no copy).

    Compaction always replaces the oldest messages of the view it compacts, so what a summary
    stands for is everything stored before the newest message it names, and every earlier
    summary. That makes this cost the messages since that point, not the whole thread: the
    summary is found from the end. (Its own ids that are not in ``messages`` are ignored; if
    none is, every message but the summaries is kept.)
    """
    index = len(messages) - 1
    mark: CompactionContent | None = None
    while index >= 0 and (mark := summary_mark(messages[index])) is None:
        index -= 1
    if mark is None:
        return messages
    latest = messages[index]
    replaced = set(mark.replaces)
    start = index - 1
    while start >= 0 and messages[start].message_id not in replaced:
        start -= 1
    rest = [m for m in messages[start + 1 :] if summary_mark(m) is None]
    return [latest, *rest]


def split_turns(messages: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """``messages`` cut into turns: each starts at a user message, tool calls never split.

    Messages before the first user message (a seeded greeting) join the first turn, and a user
    message inside a tool exchange (see :func:`group_tool_exchanges`) does not start a turn, so a
    call and its result always land in the same turn.
    """
    turns: list[list[ChatMessage]] = []
    for unit in group_tool_exchanges(messages):
        if not turns or unit[0].role == Role.USER:
            turns.append(list(unit))
        else:
            turns[-1].extend(unit)
    return turns
