"""Chat clients: the ``ChatClient`` protocol and its implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.clients.base import (
    ChatClient,
    ChatOptions,
    RunOptions,
    SupportsAddMessages,
)
from threadline.clients.scripted import RecordedCall, ScriptedChatClient

if TYPE_CHECKING:
    from threadline.clients.local import LocalChatClient

__all__ = [
    "ChatClient",
    "ChatOptions",
    "LocalChatClient",
    "RecordedCall",
    "RunOptions",
    "ScriptedChatClient",
    "SupportsAddMessages",
]


def __getattr__(name: str) -> Any:
    # LocalChatClient's module is light (llama_cpp loads on first use), but stays lazy so the
    # clients package never pays for it unless asked.
    if name == "LocalChatClient":
        from threadline.clients.local import LocalChatClient

        return LocalChatClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
