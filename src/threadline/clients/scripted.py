"""``ScriptedChatClient``: a deterministic model for tests, examples and benchmarks.

It replays scripted replies in order and records every call, so a test can assert exactly what a
model would have been sent. With ``service_threads=True`` it also plays a service that keeps the
conversation itself (like OpenAI Responses or Assistants): it hands out conversation ids, expects
only new messages plus that id, and refuses ids it never issued.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from threadline.clients.base import ChatOptions
from threadline.exceptions import ClientError, UsageError
from threadline.types.contents import Content, TextContent
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = ["RecordedCall", "ScriptedChatClient", "ScriptedReply"]

ScriptedReply = str | ChatMessage | Sequence[Content] | BaseException
"""Assistant text, a whole message, a list of contents (e.g. function calls), or an error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedCall:
    """One call a :class:`ScriptedChatClient` received."""

    messages: tuple[ChatMessage, ...]
    """The full list of messages the model was sent, instructions as a leading system message.

    For a service-managed conversation this is what the model saw: the system message, the
    history the service kept, then the new messages of the request.
    """
    sent: tuple[ChatMessage, ...]
    """What the caller put on the wire: for service-managed threads only the new messages."""
    options: ChatOptions = field(default_factory=lambda: ChatOptions())


class ScriptedChatClient:
    """A chat client that answers from a script and records every call.

    Args:
        responses: the replies, in order. A ``str`` is assistant text, a ``ChatMessage`` is
            returned as is, a list of contents becomes one assistant message, and an exception
            instance is raised instead of answering.
        service_threads: behave like a service that stores the conversation history itself.
        service_name: the service identity threads are bound to; two scripted clients with
            different names refuse each other's service threads.
    """

    def __init__(
        self,
        responses: Iterable[ScriptedReply],
        *,
        service_threads: bool = False,
        service_name: str = "scripted",
    ) -> None:
        self._replies: list[ScriptedReply] = list(responses)
        self._next = 0
        self._service_threads = service_threads
        self._service_name = service_name
        self._ids = itertools.count(1)
        self.calls: list[RecordedCall] = []
        """Every call received, in order."""
        self.conversations: dict[str, list[ChatMessage]] = {}
        """With ``service_threads``: the history the "service" keeps, by conversation id."""

    @property
    def service_name(self) -> str:
        """The service identity threads are bound to."""
        return self._service_name

    @property
    def stores_history(self) -> bool:
        """True with ``service_threads``: threads then hold only a conversation id."""
        return self._service_threads

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been used yet."""
        return len(self._replies) - self._next

    def add_replies(self, *replies: ScriptedReply) -> None:
        """Append replies to the script, e.g. between the turns of an interactive test."""
        self._replies.extend(replies)

    def assert_all_replies_used(self) -> None:
        """Fail when the script has replies left: the code under test called the model less."""
        if self.remaining:
            raise AssertionError(
                f"{self.remaining} scripted repl{'y' if self.remaining == 1 else 'ies'} unused "
                f"after {len(self.calls)} call(s)"
            )

    async def fork_conversation(self, conversation_id: str) -> str:
        """Copy a stored conversation under a new id, as a service would branch it."""
        history = self._conversation(conversation_id)
        new_id = f"conv_{next(self._ids)}"
        self.conversations[new_id] = list(history)
        return new_id

    async def add_conversation_messages(
        self, conversation_id: str | None, messages: Sequence[ChatMessage]
    ) -> str:
        """Append messages to a stored conversation without a model call (a new one for ``None``).

        Raises:
            UsageError: the client was made without ``service_threads``.
        """
        if not self._service_threads:
            raise UsageError(
                "this ScriptedChatClient keeps no conversations; make it with service_threads=True"
            )
        if conversation_id is None:
            conversation_id = f"conv_{next(self._ids)}"
            self.conversations[conversation_id] = []
        self._conversation(conversation_id).extend(messages)
        return conversation_id

    def _conversation(self, conversation_id: str) -> list[ChatMessage]:
        try:
            return self.conversations[conversation_id]
        except KeyError:
            raise ClientError(
                f"conversation {conversation_id!r} not found in service {self._service_name!r}"
            ) from None

    def _answer(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> tuple[ChatMessage, str | None, list[ChatMessage] | None]:
        sent = tuple(messages)
        history: list[ChatMessage] | None = None
        conversation_id: str | None = None
        seen = sent
        if self._service_threads:
            conversation_id = options.get("conversation_id")
            if conversation_id is None:
                conversation_id = f"conv_{next(self._ids)}"
                history = self.conversations.setdefault(conversation_id, [])
            else:
                history = self._conversation(conversation_id)
            system = [m for m in sent if m.role == Role.SYSTEM]
            new = [m for m in sent if m.role != Role.SYSTEM]
            seen = (*system, *history, *new)
            history.extend(new)
        self.calls.append(RecordedCall(messages=seen, sent=sent, options=options))
        if self._next >= len(self._replies):
            raise ClientError(
                f"ScriptedChatClient has no reply left for call {len(self.calls)}; "
                f"the script held {len(self._replies)}"
            )
        reply = self._replies[self._next]
        self._next += 1
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            message = ChatMessage(Role.ASSISTANT, reply)
        elif isinstance(reply, ChatMessage):
            message = reply
        else:
            message = ChatMessage(Role.ASSISTANT, contents=reply)
        if history is not None:
            history.append(message)
        return message, conversation_id, history

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """Return the next scripted reply (or raise it)."""
        message, conversation_id, _ = self._answer(messages, options)
        return ChatResponse(
            messages=(message,),
            response_id=f"resp_{len(self.calls)}",
            conversation_id=conversation_id,
            finish_reason="tool_calls" if message.contents and message.text == "" else "stop",
        )

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream the next scripted reply: text word by word, other contents whole."""
        message, conversation_id, _ = self._answer(messages, options)
        response_id = f"resp_{len(self.calls)}"
        for content in message.contents:
            chunks: list[Content]
            if type(content) is TextContent:
                words = content.text.split(" ")
                chunks = [TextContent(w if i == 0 else " " + w) for i, w in enumerate(words)]
            else:
                chunks = [content]
            for chunk in chunks:
                yield ChatResponseUpdate(
                    contents=(chunk,),
                    role=message.role,
                    author_name=message.author_name,
                    response_id=response_id,
                    message_id=message.message_id,
                    conversation_id=conversation_id,
                )
