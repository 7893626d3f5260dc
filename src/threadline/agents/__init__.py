"""Agents: ``ChatAgent`` and its run loop."""

from __future__ import annotations

from threadline.agents._approvals import IN_DOUBT, Waiting, waiting_requests
from threadline.agents.chat_agent import ChatAgent

__all__ = ["IN_DOUBT", "ChatAgent", "Waiting", "waiting_requests"]
