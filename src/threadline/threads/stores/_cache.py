"""What a durable store has already read, so a full read fetches only newer messages."""

from __future__ import annotations

from collections.abc import Sequence

from threadline.types.messages import ChatMessage

__all__ = ["HistoryCache"]


class HistoryCache:
    """The thread's messages as last read, re-validated on every read.

    Threads are append-only, so what was read stays true, unless the thread was deleted (and
    perhaps rewritten) by another process. Each read therefore starts one message early and checks
    that message's id against the cache; a mismatch throws the cache away and reads everything.
    """

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: list[ChatMessage] = []

    def reset(self) -> None:
        """Forget everything: the next read is a full one."""
        self._messages = []

    def read_from(self) -> int:
        """Read the messages after this position (one before the end of the cache)."""
        return max(len(self._messages) - 1, 0)

    def merge(self, start: int, fetched: Sequence[ChatMessage]) -> list[ChatMessage] | None:
        """Take messages read after position ``start``; None when the cache no longer holds.

        Returns the cache's own list, which only ever grows at the end (a reset starts a new
        one): copy it to hand out a list, or view its prefix (``MessageView``) to hand out none.
        """
        if start == 0:
            self._messages = list(fetched)
        elif fetched and fetched[0].message_id == self._messages[start].message_id:
            self._messages.extend(fetched[1:])
        else:
            self._messages = []
            return None
        return self._messages

    def appended(self, messages: Sequence[ChatMessage], version: int) -> None:
        """This store appended ``messages``, making ``version``: keep them if nothing is missing."""
        if self._messages and len(self._messages) == version - len(messages):
            self._messages.extend(messages)
