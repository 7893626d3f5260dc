"""Several agents in one conversation: group chats, sequential and handoff processes.

Built from the same parts as a single agent: each participant keeps its own ``AgentThread``,
messages reach the others through ``ChatAgent.add_chat_message``, and the whole conversation
serializes to one dict (a ``MultiAgentThread``) that resumes exactly where it stopped.

``GroupChatThread`` and ``GroupChatResponse`` are the old names of ``MultiAgentThread`` and
``MultiAgentResponse``, kept as aliases.
"""

from threadline.multiagent._relay import PropagationFilter, skip_tool_messages
from threadline.multiagent._runner import GroupChatResponse, MultiAgentResponse
from threadline.multiagent.group_chat import GroupChat
from threadline.multiagent.handoff import Handoff, HistoryView
from threadline.multiagent.managers import (
    AgentManager,
    FunctionManager,
    GroupChatManager,
    RoundRobinManager,
    SpeakerSelection,
)
from threadline.multiagent.sequential import SequentialProcess
from threadline.multiagent.thread import GroupChatThread, MultiAgentThread

__all__ = [
    "AgentManager",
    "FunctionManager",
    "GroupChat",
    "GroupChatManager",
    "GroupChatResponse",
    "GroupChatThread",
    "Handoff",
    "HistoryView",
    "MultiAgentResponse",
    "MultiAgentThread",
    "PropagationFilter",
    "RoundRobinManager",
    "SequentialProcess",
    "SpeakerSelection",
    "skip_tool_messages",
]
