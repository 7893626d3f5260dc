"""The one error hierarchy of threadline.

Every error threadline raises on purpose derives from :class:`ThreadlineError`, split by who
must act::

    ThreadlineError
    ├── UsageError                  the calling code misused the API: fix the call
    │   ├── IncompatibleThreadError a thread was handed to an agent that cannot continue it
    │   └── ToolArgumentsError      a tool was called with arguments that do not fit it
    ├── ThreadStateError            serialized thread state is malformed, unknown or tampered with
    ├── MessageFormatError          a message or content's JSON form is malformed
    ├── ClientError                 the model endpoint failed or sent something unusable
    │   └── OpenAIServiceError      an OpenAI-compatible service answered with an error status
    ├── ToolServerError             a tool server (MCP) failed, timed out or sent something unusable
    ├── StoreError                  a message store could not read or write a thread
    │   └── ConcurrentThreadUpdateError  another writer changed the thread first
    └── AgentRunError               the run could not complete: the model kept calling tools
        └── GroupChatError          a multi-agent run could not go on (bad speaker, handoff loop)

Errors that describe bad values also derive from :class:`ValueError`, so code that already catches
``ValueError`` for bad input keeps working.
"""

from __future__ import annotations

__all__ = [
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
]


class ThreadlineError(Exception):
    """Base for every error this package raises on purpose."""


class UsageError(ThreadlineError):
    """The calling code misused the API; fix the call, not the data."""


class IncompatibleThreadError(UsageError):
    """A thread was used with an agent whose chat client cannot continue it.

    Raised before any model call, so nothing is sent and nothing is stored.
    """


class ToolArgumentsError(UsageError, ValueError):
    """A tool was called with arguments that do not fit its parameters.

    Raised by ``FunctionTool.invoke``; inside a run the tool loop sends the message back to the
    model as the call's result, so the model can correct its call.
    """


class ThreadStateError(ThreadlineError, ValueError):
    """Serialized thread state is malformed, of an unknown version, or of the wrong type."""


class MessageFormatError(ThreadlineError, ValueError):
    """A message or content's JSON form is malformed; the message names the offending field."""


class ClientError(ThreadlineError):
    """The model endpoint failed or sent something threadline cannot use."""


class OpenAIServiceError(ClientError):
    """An OpenAI-compatible service answered with an error status.

    ``status_code`` and ``code`` are the service's; the message includes the service's own.
    """

    def __init__(self, message: str, *, status_code: int | None, code: str | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class ToolServerError(ThreadlineError):
    """A tool server (an MCP server) could not be started, reached or used.

    Raised when connecting or listing its tools fails (the run stops before any model call), and
    by a call that fails, times out or finds the server gone; inside a run the tool loop sends that
    call's message back to the model as the result, and the run goes on.
    """


class StoreError(ThreadlineError):
    """A message store could not read or write a thread."""


class ConcurrentThreadUpdateError(StoreError):
    """The thread changed since this writer read it; nothing of this write was stored.

    Raised by a store's version check when two writers race on one thread. Re-read the thread and
    retry the turn if that is what the caller wants.
    """

    def __init__(self, thread_id: str, *, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"thread {thread_id!r} changed while this turn ran: expected version "
            f"{expected_version}, found {actual_version}; another run wrote to it first. "
            "Nothing of this write was stored; re-read the thread and retry the turn."
        )
        self.thread_id = thread_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class AgentRunError(ThreadlineError):
    """An agent run could not complete for a reason other than the model or the store.

    Raised by the tool loop when the model still calls tools on the last call it may make
    (``max_tool_iterations`` exhausted, tools withheld): storing those unanswered calls would leave
    a history no chat API accepts, so the run fails instead, keeping only its input.
    """


class GroupChatError(AgentRunError):
    """A group chat or process could not go on.

    For example a manager named no participant, or handoffs bounced between agents past the
    configured bound. The conversation's state is left as it was after its last complete turn.
    """
