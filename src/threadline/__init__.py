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
from threadline.threads.stores import (
    ChatMessageList,
    ChatMessageStore,
    JSONCodec,
    MessageCodec,
    TokenCounter,
    estimate_tokens,
    register_store_kind,
)
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
    from threadline.threads.stores.encryption import EncryptedCodec
    from threadline.threads.stores.postgres import PostgresChatMessageStore
    from threadline.threads.stores.redis import RedisChatMessageStore
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
    "RedisChatMessageStore",
    "PostgresChatMessageStore",
    "ThreadBinding",
    "EncryptedCodec",
    "JSONCodec",
    "MessageCodec",
    "TokenCounter",
    "estimate_tokens",
    "register_store_kind",
    # memory
    "Context",
    "ContextProvider",
    # clients
    "ChatClient",
    "ChatOptions",
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


_LAZY_STORES = frozenset(
    {
        "SQLiteChatMessageStore",
        "RedisChatMessageStore",
        "PostgresChatMessageStore",
        "EncryptedCodec",
    }
)


def __getattr__(name: str) -> _typing.Any:
    # Optional parts load on first use, so `import threadline` stays light.
    if name in _LAZY_STORES:
        import threadline.threads.stores as stores

        return getattr(stores, name)
    raise AttributeError(f"module 'threadline' has no attribute {name!r}")
