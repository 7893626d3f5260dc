"""The ``ChatClient`` protocol: the one extension point for models.

A client turns messages into a model's answer. It also says what it needs from a thread: whether the
service behind it keeps the conversation history itself (``stores_history``) and which service that
is (``service_name``), so agents can refuse a thread they cannot continue before any call is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from threadline.tools import FunctionTool
from threadline.types.messages import ChatMessage
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = [
    "ChatClient",
    "ChatOptions",
    "RunOptions",
    "SupportsAddMessages",
]


class RunOptions(TypedDict, total=False):
    """Model settings a caller may pass to ``agent.run(..., temperature=0.2)``."""

    model: str
    temperature: float
    top_p: float
    max_tokens: int
    stop: Sequence[str]
    seed: int
    tool_choice: Literal["auto", "none", "required"]
    user: str
    additional_properties: Mapping[str, Any]
    """Provider-specific settings, passed through unchanged."""


class ChatOptions(RunOptions, total=False):
    """Settings of one model call. Clients pass on what their service understands."""

    tools: Sequence[FunctionTool]
    conversation_id: str
    """The service-side conversation to continue; set by the agent for service-managed threads."""


@runtime_checkable
class ChatClient(Protocol):
    """A model endpoint.

    ``messages`` always starts with the system message when the agent has instructions. With
    ``stores_history`` the agent sends only the new messages of a turn plus
    ``options["conversation_id"]``, and the client returns the id to continue with in
    ``ChatResponse.conversation_id``; otherwise every call carries the whole history.
    """

    @property
    def service_name(self) -> str:
        """Identifies the service a service-managed thread lives in, e.g. its kind and URL."""
        ...

    @property
    def stores_history(self) -> bool:
        """True when the service keeps the conversation and threads hold only its id."""
        ...

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """Answer in one piece."""
        ...

    def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Answer as a stream of updates; function calls arrive whole."""
        ...


@runtime_checkable
class SupportsAddMessages(Protocol):
    """A client whose service can take messages into a conversation without running the model.

    Used by ``ChatAgent.add_chat_message`` for service-managed threads (OpenAI Conversations items,
    Assistants thread messages), so a group chat can show a service-hosted participant what the
    others said.
    """

    async def add_conversation_messages(
        self, conversation_id: str | None, messages: Sequence[ChatMessage]
    ) -> str:
        """Append ``messages`` to the conversation (a new one when ``None``); return its id."""
        ...
