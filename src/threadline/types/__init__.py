"""Values: messages, their contents, and what model calls and agent runs return."""

from __future__ import annotations

from threadline.types.contents import (
    CompactionContent,
    Content,
    DataContent,
    ErrorContent,
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    FunctionResultContent,
    JSONValue,
    TextContent,
    UriContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import (
    AgentRunResponse,
    AgentRunResponseUpdate,
    ChatResponse,
    ChatResponseUpdate,
)

__all__ = [
    "AgentRunResponse",
    "AgentRunResponseUpdate",
    "ChatMessage",
    "ChatResponse",
    "ChatResponseUpdate",
    "CompactionContent",
    "Content",
    "DataContent",
    "ErrorContent",
    "FunctionApprovalRequestContent",
    "FunctionApprovalResponseContent",
    "FunctionCallContent",
    "FunctionResultContent",
    "JSONValue",
    "Role",
    "TextContent",
    "UriContent",
    "UsageContent",
    "UsageDetails",
]
