"""threadline: AI agents that hold multi-turn conversations.

Agents are stateless; conversation state lives in threads (service-managed or local, serializable,
resumable, forkable); context providers plug memory into every model call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.agents import ChatAgent
from threadline.clients import (
    ChatClient,
    ChatOptions,
    RecordedCall,
    ScriptedChatClient,
    SupportsConversationFork,
)
from threadline.exceptions import (
    AgentRunError,
    ClientError,
    ConcurrentThreadUpdateError,
    IncompatibleThreadError,
    MessageFormatError,
    StoreError,
    ThreadlineError,
    ThreadStateError,
    UsageError,
)
from threadline.memory import Context, ContextProvider
from threadline.threads import AgentThread, ThreadBinding
from threadline.threads.reducers import TokenBudgetReducer, reduce_to_token_budget
from threadline.threads.stores import ChatMessageList, ChatMessageStore
from threadline.tools import FunctionTool, ToolArgumentsError, tool
from threadline.types import (
    AgentRunResponse,
    AgentRunResponseUpdate,
    ChatMessage,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    TextContent,
    UriContent,
    UsageContent,
    UsageDetails,
)

if TYPE_CHECKING:
    from threadline.clients.local import LocalChatClient
    from threadline.threads.stores.sqlite import SQLiteChatMessageStore

__version__ = "0.1.0"

__all__ = [
    # agents
    "ChatAgent",
    # threads and stores
    "AgentThread",
    "ChatMessageList",
    "ChatMessageStore",
    "SQLiteChatMessageStore",
    "ThreadBinding",
    "TokenBudgetReducer",
    "reduce_to_token_budget",
    # memory
    "Context",
    "ContextProvider",
    # clients
    "ChatClient",
    "ChatOptions",
    "LocalChatClient",
    "RecordedCall",
    "ScriptedChatClient",
    "SupportsConversationFork",
    # tools
    "FunctionTool",
    "tool",
    # messages and responses
    "AgentRunResponse",
    "AgentRunResponseUpdate",
    "ChatMessage",
    "ChatResponse",
    "ChatResponseUpdate",
    "Content",
    "DataContent",
    "ErrorContent",
    "FunctionCallContent",
    "FunctionResultContent",
    "Role",
    "TextContent",
    "UriContent",
    "UsageContent",
    "UsageDetails",
    # errors
    "AgentRunError",
    "ClientError",
    "ConcurrentThreadUpdateError",
    "IncompatibleThreadError",
    "MessageFormatError",
    "StoreError",
    "ThreadStateError",
    "ThreadlineError",
    "ToolArgumentsError",
    "UsageError",
    # version
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Optional parts load on first use, so `import threadline` stays light.
    if name == "SQLiteChatMessageStore":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        return SQLiteChatMessageStore
    if name == "LocalChatClient":
        from threadline.clients.local import LocalChatClient

        return LocalChatClient
    raise AttributeError(f"module 'threadline' has no attribute {name!r}")
