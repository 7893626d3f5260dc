"""Chat clients: the ``ChatClient`` protocol and its implementations."""

from __future__ import annotations

from threadline.clients.base import ChatClient, ChatOptions, SupportsConversationFork
from threadline.clients.scripted import RecordedCall, ScriptedChatClient

__all__ = [
    "ChatClient",
    "ChatOptions",
    "RecordedCall",
    "ScriptedChatClient",
    "SupportsConversationFork",
]
