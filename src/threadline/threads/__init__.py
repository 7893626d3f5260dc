"""Threads: the state of one conversation, and the stores that keep local threads' messages."""

from __future__ import annotations

from threadline.threads.thread import AgentThread, SupportsConversationFork, ThreadBinding

__all__ = ["AgentThread", "SupportsConversationFork", "ThreadBinding"]
