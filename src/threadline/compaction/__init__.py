"""Compaction: conversations longer than the window, summarized without losing anything.

When a local thread's history no longer fits a model's window, its oldest turns are summarized
into one message that is **stored in the thread**, marked with a
:class:`~threadline.types.contents.CompactionContent` naming the messages it stands for. Models
are sent :func:`compacted_view` of the thread (the summary, then the newer turns); the thread
itself keeps everything, so ``list_messages()``, ``serialize()``, ``threadline threads show``
and a fork before the summary still give the original history. See ``docs/threads.md``.
"""

from __future__ import annotations

from threadline.compaction.policy import Compaction
from threadline.compaction.summary import Summarizer, extractive_summary, user_facts
from threadline.compaction.view import compacted_view, split_turns, summary_mark

__all__ = [
    "Compaction",
    "Summarizer",
    "compacted_view",
    "extractive_summary",
    "split_turns",
    "summary_mark",
    "user_facts",
]
