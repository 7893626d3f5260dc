"""threadline: AI agents that hold multi-turn conversations.

Agents are stateless; conversation state lives in threads (service-managed or local, serializable,
resumable, forkable); context providers plug memory into every model call.
"""

import importlib as _importlib
import typing as _typing

from threadline._tracing_setup import configure_tracing
from threadline.agents import ChatAgent
from threadline.clients import (
    ChatClient,
    ChatOptions,
    RecordedCall,
    RunOptions,
    ScriptedChatClient,
    SupportsAddMessages,
)
from threadline.closing import SupportsAclose
from threadline.compaction import Compaction, compacted_view
from threadline.exceptions import (
    AgentRunError,
    ClientError,
    ConcurrentThreadUpdateError,
    GroupChatError,
    IncompatibleThreadError,
    MessageFormatError,
    OpenAIServiceError,
    StoreError,
    ThreadlineError,
    ThreadStateError,
    ToolArgumentsError,
    ToolServerError,
    UsageError,
)
from threadline.history import TokenBudgetReducer, reduce_to_token_budget
from threadline.memory import (
    Context,
    ContextProvider,
    ConversationMemory,
    Embedder,
    ExpiringMemoryStore,
    ForgetResult,
    InMemoryMemoryStore,
    MemoryHit,
    MemoryKind,
    MemoryPruneResult,
    MemoryRecord,
    MemoryScope,
    MemoryStore,
    UserPreferencesMemory,
    open_memory_store,
)
from threadline.multiagent import (
    AgentManager,
    FunctionManager,
    GroupChat,
    GroupChatManager,
    GroupChatResponse,
    GroupChatThread,
    Handoff,
    HistoryView,
    MultiAgentResponse,
    MultiAgentThread,
    PropagationFilter,
    RoundRobinManager,
    SequentialProcess,
    SpeakerSelection,
    skip_tool_messages,
)
from threadline.threads import AgentThread, SupportsConversationFork, ThreadBinding
from threadline.threads.stores import (
    ChatMessageList,
    ChatMessageStore,
    JSONCodec,
    MessageCodec,
    PrunableDatabase,
    PruneResult,
    RecordDatabase,
    StagedStore,
    ThreadBatch,
    ThreadDatabase,
    ThreadInfo,
    ThreadRecord,
    TokenCounter,
    estimate_tokens,
    open_database,
    register_store_kind,
)
from threadline.tools import FunctionTool, ToolSource, tool
from threadline.types import (
    AgentRunResponse,
    AgentRunResponseUpdate,
    ChatMessage,
    ChatResponse,
    ChatResponseUpdate,
    CompactionContent,
    Content,
    DataContent,
    ErrorContent,
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    TextContent,
    UriContent,
    UsageContent,
    UsageDetails,
)

if _typing.TYPE_CHECKING:
    from threadline.clients.local import LocalChatClient
    from threadline.clients.openai_assistants import OpenAIAssistantsClient
    from threadline.clients.openai_chat import OpenAIChatClient
    from threadline.clients.openai_responses import OpenAIResponsesClient
    from threadline.mcp import MCPStdioTool, MCPStreamableHTTPTool
    from threadline.memory.embedders import MiniLMEmbedder, default_embedder
    from threadline.memory.stores import PostgresMemoryStore, SQLiteMemoryStore
    from threadline.threads.stores.encryption import EncryptedCodec
    from threadline.threads.stores.postgres import PostgresChatMessageStore
    from threadline.threads.stores.redis import RedisChatMessageStore
    from threadline.threads.stores.sqlite import SQLiteChatMessageStore

__version__ = "0.1.0"

__all__ = [
    # agents
    "ChatAgent",
    "Compaction",
    "compacted_view",
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
    # thread databases: threads with records beside them, opened from a spec
    "PrunableDatabase",
    "PruneResult",
    "RecordDatabase",
    "StagedStore",
    "ThreadBatch",
    "ThreadDatabase",
    "ThreadInfo",
    "ThreadRecord",
    "open_database",
    # memory
    "Context",
    "ContextProvider",
    "ConversationMemory",
    "UserPreferencesMemory",
    "InMemoryMemoryStore",
    "ExpiringMemoryStore",
    "MemoryKind",
    "Embedder",
    "ForgetResult",
    "MemoryPruneResult",
    "MemoryHit",
    "MemoryRecord",
    "MemoryScope",
    "MemoryStore",
    "MiniLMEmbedder",
    "PostgresMemoryStore",
    "SQLiteMemoryStore",
    "default_embedder",
    "open_memory_store",
    # multi-agent
    "AgentManager",
    "FunctionManager",
    "GroupChat",
    "GroupChatManager",
    "GroupChatResponse",  # old name of MultiAgentResponse, kept as an alias
    "GroupChatThread",  # old name of MultiAgentThread, kept as an alias
    "Handoff",
    "HistoryView",
    "MultiAgentResponse",
    "MultiAgentThread",
    "PropagationFilter",
    "RoundRobinManager",
    "SequentialProcess",
    "SpeakerSelection",
    "skip_tool_messages",
    # clients
    "ChatClient",
    "ChatOptions",
    "LocalChatClient",
    "OpenAIAssistantsClient",
    "OpenAIChatClient",
    "OpenAIResponsesClient",
    "RecordedCall",
    "RunOptions",
    "ScriptedChatClient",
    "SupportsAclose",
    "SupportsAddMessages",
    "SupportsConversationFork",
    # tools
    "FunctionTool",
    "MCPStdioTool",
    "MCPStreamableHTTPTool",
    "ToolSource",
    "tool",
    # messages and responses
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
    "Role",
    "TextContent",
    "UriContent",
    "UsageContent",
    "UsageDetails",
    # observability
    "configure_tracing",
    # errors
    "AgentRunError",
    "ClientError",
    "ConcurrentThreadUpdateError",
    "GroupChatError",
    "IncompatibleThreadError",
    "MessageFormatError",
    "OpenAIServiceError",
    "StoreError",
    "ThreadStateError",
    "ThreadlineError",
    "ToolArgumentsError",
    "ToolServerError",
    "UsageError",
    # version
    "__version__",
]


_LAZY: dict[str, str] = {
    "EncryptedCodec": "threadline.threads.stores",
    "LocalChatClient": "threadline.clients.local",
    "MCPStdioTool": "threadline.mcp",
    "MCPStreamableHTTPTool": "threadline.mcp",
    "MiniLMEmbedder": "threadline.memory.embedders",
    "OpenAIAssistantsClient": "threadline.clients.openai_assistants",
    "OpenAIChatClient": "threadline.clients.openai_chat",
    "OpenAIResponsesClient": "threadline.clients.openai_responses",
    "PostgresChatMessageStore": "threadline.threads.stores",
    "PostgresMemoryStore": "threadline.memory.stores",
    "RedisChatMessageStore": "threadline.threads.stores",
    "SQLiteChatMessageStore": "threadline.threads.stores",
    "SQLiteMemoryStore": "threadline.memory.stores",
    "default_embedder": "threadline.memory.embedders",
}
"""Public names whose modules need optional dependencies: imported on first use only."""


def __getattr__(name: str) -> _typing.Any:
    # Optional parts load on first use, so `import threadline` stays light.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    return getattr(_importlib.import_module(module), name)
