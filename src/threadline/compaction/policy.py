"""``Compaction``: when a turn's history outgrows the budget, summarize its oldest turns.

Decided when a turn begins, after the history is read: if the request the model would receive
(instructions, context, the compacted history, the new input) costs more than the budget, the
oldest whole turns (a tool call and its result never split; never the turn in progress) become
one summary message, and the turn stores it with its own messages in its one version-checked
append. So compaction is atomic with the turn: two writers cannot both compact (the second finds
the thread changed and stores nothing), and a turn that fails stores no summary (the next turn
makes it again). Nothing is deleted: see :mod:`threadline.compaction.view`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threadline.clients.base import ChatClient, RunOptions
from threadline.compaction.summary import Summarizer, summarize, user_facts
from threadline.compaction.view import compacted_view, split_turns, summary_mark
from threadline.exceptions import UsageError
from threadline.history import TokenCounter, estimate_tokens
from threadline.types.contents import CompactionContent, TextContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["Compaction"]

_ESTIMATE_MARGIN = 10
"""Percent of the window left unused when the budget is derived from it: token counts are
estimates unless ``count_tokens`` is the model's own tokenizer."""


def _positive(name: str, value: int | None, *, zero: bool = False) -> None:
    if value is None:
        return
    if type(value) is not int or value < (0 if zero else 1):
        least = "a non-negative" if zero else "a positive"
        raise ValueError(f"Compaction({name}=...) must be {least} int or None, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Compaction:
    """Summarize the oldest turns of a local thread into one stored summary when it grows too long.

    Give it to ``ChatAgent(..., compaction=Compaction())``. Service-managed threads (Responses
    chains, conversations, Assistants threads) are left to their service: there is no local
    history to compact.
    """

    max_tokens: int | None = None
    """The most a request may cost before old turns are summarized. ``None``: the client's
    context window (``context_window``, or ``n_ctx`` for ``LocalChatClient``) minus the reply's
    tokens (the call's ``max_tokens``, else the client's) and a 10% margin; a client that names
    no window is then never compacted."""
    summarizer: ChatClient | Summarizer | None = None
    """Who writes summaries: a chat client, or an async function of the messages returning the
    text. ``None``: the agent's own client. Whatever it is, a failure falls back to an extractive
    summary (see :mod:`threadline.compaction.summary`)."""
    keep_recent_tokens: int | None = None
    """How much of the newest history is kept word for word when compacting (whole turns that
    fit). ``None``: half the budget. ``0``: every complete turn is summarized."""
    summary_max_tokens: int | None = None
    """The longest summary. ``None``: a quarter of the budget. A summary is also always shorter
    than the messages it replaces, or it is not made."""
    count_tokens: TokenCounter = estimate_tokens
    """Costs one message; pass the model's tokenizer to match its window exactly."""

    def __post_init__(self) -> None:
        _positive("max_tokens", self.max_tokens)
        _positive("keep_recent_tokens", self.keep_recent_tokens, zero=True)
        _positive("summary_max_tokens", self.summary_max_tokens)
        if (
            self.max_tokens is not None
            and self.keep_recent_tokens is not None
            and self.keep_recent_tokens >= self.max_tokens
        ):
            raise ValueError(
                f"Compaction(keep_recent_tokens={self.keep_recent_tokens}) must be below "
                f"max_tokens={self.max_tokens}, or compacting could never make a request fit"
            )
        writer = self.summarizer
        if writer is not None and not isinstance(writer, ChatClient) and not callable(writer):
            raise UsageError(
                f"Compaction(summarizer=...) must be a ChatClient or an async function of the "
                f"messages returning the summary's text, got {writer!r}"
            )

    def budget(self, client: ChatClient, options: RunOptions) -> int | None:
        """The request budget for ``client``, or ``None`` when none is known (no compaction)."""
        if self.max_tokens is not None:
            return self.max_tokens
        window = getattr(client, "context_window", None) or getattr(client, "n_ctx", None)
        if type(window) is not int or window <= 0:
            return None
        reply = options.get("max_tokens") or getattr(client, "max_tokens", None) or 0
        reply = min(int(reply), window // 2)
        return (window - reply) * (100 - _ESTIMATE_MARGIN) // 100

    async def compact(
        self,
        history: Sequence[ChatMessage],
        *,
        fixed: Sequence[ChatMessage],
        client: ChatClient,
        options: RunOptions,
        in_progress: bool = False,
    ) -> tuple[Sequence[ChatMessage], ChatMessage | None]:
        """The history to send, and the new summary to store with the turn (``None``: none).

        Args:
            history: the thread's messages, as stored.
            fixed: what the request carries besides history (instructions, context, the input).
            client: the agent's client: its window sets the default budget, and it writes the
                summary unless a ``summarizer`` is given.
            options: the run's options (their ``max_tokens`` is the reply's budget).
            in_progress: the newest turn of ``history`` is not finished (the input answers its
                deferred tool calls), so it is never compacted.
        """
        view = compacted_view(history)
        budget = self.budget(client, options)
        if budget is None or not view:
            return view, None
        count = self.count_tokens
        if sum(map(count, fixed)) + sum(map(count, view)) <= budget:
            return view, None
        previous = view[0] if summary_mark(view[0]) is not None else None
        turns = split_turns(view[1:] if previous is not None else view)
        room = self.keep_recent_tokens if self.keep_recent_tokens is not None else budget // 2
        keep_from = len(turns)
        if in_progress and turns:
            keep_from -= 1
            room -= sum(map(count, turns[-1]))
        while keep_from > 0 and (cost := sum(map(count, turns[keep_from - 1]))) <= room:
            room -= cost
            keep_from -= 1
        old = [m for turn in turns[:keep_from] for m in turn]
        if not old:  # only the newest turns are left: nothing complete to summarize
            return view, None
        source = [previous, *old] if previous is not None else old
        limit = min(self.summary_max_tokens or max(32, budget // 4), sum(map(count, source)) - 1)
        # The user's facts come from their own words in everything the summary will stand for
        # (the chain's originals are still in the history), not only from what the previous
        # summary quoted: a model may have kept a fact there in its own words only, and the next
        # model may drop it (bench/compaction.py at --ctx 640 lost the city that way).
        kept = {m.message_id for turn in turns[keep_from:] for m in turn}
        stood_for = [m for m in history if summary_mark(m) is None and m.message_id not in kept]
        facts = user_facts([previous, *stood_for] if previous is not None else stood_for)
        made = await summarize(
            source,
            writer=self.summarizer or client,
            max_tokens=limit,
            count_tokens=count,
            facts=facts,
        )
        if made is None:
            return view, None
        text, method = made
        summary = ChatMessage(
            Role.SYSTEM,
            contents=[
                TextContent(text),
                CompactionContent(
                    replaces=tuple(m.message_id for m in old),
                    previous=previous.message_id if previous is not None else None,
                    method=method,
                ),
            ],
        )
        return [summary, *(m for turn in turns[keep_from:] for m in turn)], summary
