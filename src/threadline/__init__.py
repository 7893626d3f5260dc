"""threadline: AI agents that hold multi-turn conversations.

Agents are stateless; conversation state lives in threads (service-managed or local, serializable,
resumable, forkable); context providers plug memory into every model call.
"""

import typing as _typing

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

if _typing.TYPE_CHECKING:
    from threadline.clients._openai_common import OpenAIServiceError
    from threadline.clients.openai_assistants import OpenAIAssistantsClient
    from threadline.clients.openai_chat import OpenAIChatClient
    from threadline.clients.openai_responses import OpenAIResponsesClient
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
    # memory
    "Context",
    "ContextProvider",
    # clients
    "ChatClient",
    "ChatOptions",
    "OpenAIAssistantsClient",
    "OpenAIChatClient",
    "OpenAIResponsesClient",
    "OpenAIServiceError",
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


_OPENAI = {
    "OpenAIAssistantsClient": "threadline.clients.openai_assistants",
    "OpenAIChatClient": "threadline.clients.openai_chat",
    "OpenAIResponsesClient": "threadline.clients.openai_responses",
    "OpenAIServiceError": "threadline.clients._openai_common",
}


def __getattr__(name: str) -> _typing.Any:
    # Optional parts load on first use, so `import threadline` stays light.
    if name == "SQLiteChatMessageStore":
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        return SQLiteChatMessageStore
    if name in _OPENAI:
        # The OpenAI clients need the `openai` extra; load them only when asked for.
        import importlib

        return getattr(importlib.import_module(_OPENAI[name]), name)
    raise AttributeError(f"module 'threadline' has no attribute {name!r}")
