"""What a model call and an agent run return, whole or as a stream of updates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from threadline.types.contents import (
    Content,
    FunctionApprovalRequestContent,
    FunctionCallContent,
    TextContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage, Role

if TYPE_CHECKING:
    from threadline.threads.thread import AgentThread

__all__ = [
    "AgentRunResponse",
    "AgentRunResponseUpdate",
    "ChatResponse",
    "ChatResponseUpdate",
    "messages_from_updates",
]


def _joined_text(messages: Iterable[ChatMessage]) -> str:
    return "\n".join(t for t in (m.text for m in messages) if t)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponse:
    """One model call's answer, as a chat client returns it."""

    messages: tuple[ChatMessage, ...]
    response_id: str | None = None
    conversation_id: str | None = None
    """Set by services that keep the history: the id to continue the conversation with."""
    usage: UsageDetails | None = None
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        """The text of all messages, one per line."""
        return _joined_text(self.messages)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponseUpdate:
    """A piece of a streamed model answer.

    Clients yield text in chunks, but each function call whole, once its arguments are complete.
    """

    contents: tuple[Content, ...] = ()
    role: Role = Role.ASSISTANT
    author_name: str | None = None
    response_id: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        """The text of this chunk."""
        return "".join(c.text for c in self.contents if type(c) is TextContent)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRunResponse:
    """The result of ``agent.run``: the messages the agent produced and the thread to continue."""

    messages: tuple[ChatMessage, ...]
    """Everything this run added after the input: tool calls, tool results and the answer."""
    response_id: str | None = None
    usage: UsageDetails | None = None
    thread: AgentThread | None = field(default=None, compare=False, repr=False)
    """The thread the run used; pass it to the next ``run`` to continue the conversation."""
    pending_calls: tuple[FunctionCallContent, ...] = ()
    """Calls to deferred tools (``FunctionTool`` without a function) the caller must answer.

    Empty for a run that ended with the model's answer. Otherwise the run stopped after storing the
    model's call message; answer each call with a ``FunctionResultContent`` in a ``Role.TOOL``
    message, passed as the next ``run``'s input on the same thread, and the loop continues.
    """

    @property
    def text(self) -> str:
        """The text of the messages the agent produced, one per line."""
        return _joined_text(self.messages)

    @property
    def user_input_requests(self) -> list[FunctionApprovalRequestContent]:
        """Calls the run stopped at because a person must approve them first.

        Empty for a run that needed no approval. Otherwise the run stopped before running these
        calls (ordinary calls of the same answer ran); answer each with
        ``request.create_response(approved=...)``, all in one ``Role.USER`` message passed as the
        next run's input on the same thread. The requests are stored in the thread too (in the
        run's last assistant message), so they can be answered after a restart.
        """
        return [
            c
            for m in self.messages
            if m.plain_text is None
            for c in m.contents
            if type(c) is FunctionApprovalRequestContent
        ]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRunResponseUpdate:
    """A piece of a streamed agent run: a text chunk, a whole tool call or a tool result."""

    contents: tuple[Content, ...] = ()
    role: Role = Role.ASSISTANT
    author_name: str | None = None
    response_id: str | None = None
    message_id: str | None = None

    @property
    def text(self) -> str:
        """The text of this chunk."""
        return "".join(c.text for c in self.contents if type(c) is TextContent)

    @property
    def user_input_requests(self) -> list[FunctionApprovalRequestContent]:
        """Calls waiting for approval that this update announces (see ``AgentRunResponse``)."""
        return [c for c in self.contents if type(c) is FunctionApprovalRequestContent]

    def __str__(self) -> str:
        return self.text


def messages_from_updates(
    updates: Sequence[ChatResponseUpdate | AgentRunResponseUpdate],
) -> tuple[list[ChatMessage], UsageDetails | None]:
    """Fold streamed updates into whole messages, and sum the usage they reported.

    Updates belong to the same message while their ``message_id`` (or, without ids, their role)
    stays the same; adjacent text chunks of a message are joined into one ``TextContent``.
    """
    messages: list[ChatMessage] = []
    usage: UsageDetails | None = None
    parts: list[Content] = []
    text: list[str] = []
    current: ChatResponseUpdate | AgentRunResponseUpdate | None = None

    def flush_text() -> None:
        if text:
            parts.append(TextContent("".join(text)))
            text.clear()

    def flush_message() -> None:
        flush_text()
        if current is not None and parts:
            messages.append(
                ChatMessage(
                    current.role,
                    contents=list(parts),
                    author_name=current.author_name,
                    message_id=current.message_id,
                )
            )
        parts.clear()

    for update in updates:
        if current is not None and (
            update.role != current.role
            or (update.message_id or current.message_id) != current.message_id
        ):
            flush_message()
            current = None
        if current is None:
            current = update
        for content in update.contents:
            if type(content) is TextContent:
                text.append(content.text)
            elif type(content) is UsageContent:
                usage = content.details if usage is None else usage + content.details
            else:
                flush_text()
                parts.append(content)
    flush_message()
    return messages, usage
