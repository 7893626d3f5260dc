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
    written after it. A chain of summaries is followed through ``previous``, so the messages an
    earlier summary replaced (and that summary) stay out too. Without a summary, ``messages``
    itself is returned (no copy). Ids a summary names that are not in ``messages`` are ignored.
    """
    summaries: dict[str, CompactionContent] = {}
    latest: ChatMessage | None = None
    for message in messages:
        mark = summary_mark(message)
        if mark is not None:
            summaries[message.message_id] = mark
            latest = message
    if latest is None:
        return messages
    hidden: set[str] = {latest.message_id}
    mark: CompactionContent | None = summaries[latest.message_id]
    while mark is not None:
        hidden.update(mark.replaces)
        previous = mark.previous
        if previous is None or previous in hidden:  # a cycle in tampered data ends here
            break
        hidden.add(previous)
        mark = summaries.get(previous)
    rest = [m for m in messages if m.message_id not in hidden]
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
