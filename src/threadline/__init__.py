"""threadline: AI agents that hold multi-turn conversations.

Agents are stateless; conversation state lives in threads (service-managed or local, serializable,
resumable, forkable); context providers plug memory into every model call.
"""

import importlib as _importlib
import typing as _typing

from threadline.agents import ChatAgent
from threadline.clients import (
    ChatClient,
    ChatOptions,
    RecordedCall,
    RunOptions,
    ScriptedChatClient,
    SupportsAddMessages,
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
    from threadline.clients._openai_common import OpenAIServiceError
    from threadline.clients.local import LocalChatClient
    from threadline.clients.openai_assistants import OpenAIAssistantsClient
    from threadline.clients.openai_chat import OpenAIChatClient
    from threadline.clients.openai_responses import OpenAIResponsesClient
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
    "TokenBudgetReducer",
    "reduce_to_token_budget",
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
    "LocalChatClient",
    "OpenAIAssistantsClient",
    "OpenAIChatClient",
    "OpenAIResponsesClient",
    "OpenAIServiceError",
    "RecordedCall",
    "RunOptions",
    "ScriptedChatClient",
    "SupportsAddMessages",
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


_LAZY: dict[str, str] = {
    "EncryptedCodec": "threadline.threads.stores",
    "LocalChatClient": "threadline.clients.local",
    "OpenAIAssistantsClient": "threadline.clients.openai_assistants",
    "OpenAIChatClient": "threadline.clients.openai_chat",
    "OpenAIResponsesClient": "threadline.clients.openai_responses",
    "OpenAIServiceError": "threadline.clients._openai_common",
    "PostgresChatMessageStore": "threadline.threads.stores",
    "RedisChatMessageStore": "threadline.threads.stores",
    "SQLiteChatMessageStore": "threadline.threads.stores",
}
"""Public names whose modules need optional dependencies: imported on first use only."""


def __getattr__(name: str) -> _typing.Any:
    # Optional parts load on first use, so `import threadline` stays light.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    return getattr(_importlib.import_module(module), name)
