"""The GenAI spans of a run: ``invoke_agent``, ``chat`` (one per model call), thread store access.

The run loop calls these at its few points of interest; each returns or takes ``Span | None``
(``None`` when tracing is off, see :mod:`threadline._tracing`), so a turn without a tracer
provider builds no attributes at all. ``execute_tool`` spans are made in ``_tool_calls``.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline import _tracing as tr
from threadline.clients.base import ChatClient, ChatOptions
from threadline.threads.stores.base import ChatMessageStore, store_kind
from threadline.threads.thread import AgentThread
from threadline.types.contents import (
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage

__all__ = [
    "agent_span",
    "chat_span",
    "end_agent",
    "end_chat",
    "messages_json",
    "model_name",
    "provider_name",
    "store_span",
    "traced_append",
    "usage_in",
]

_DB_SYSTEMS = {"sqlite": "sqlite", "postgres": "postgresql", "redis": "redis", "memory": "memory"}
"""Store kinds as the conventions' ``db.system.name`` values (ours where they have none)."""


def provider_name(client: ChatClient) -> str:
    """``gen_ai.provider.name`` of a client: its ``provider_name`` if it has one, else a guess."""
    given: object = getattr(client, "provider_name", None)
    if isinstance(given, str):
        return given
    kind = type(client).__name__
    if kind.startswith("OpenAI"):
        return "openai"
    if kind == "LocalChatClient":
        return "llama_cpp"
    return client.service_name.split(":", 1)[0]


def model_name(client: ChatClient, options: ChatOptions) -> str | None:
    """The model a call asks for: the run's ``model`` option, else the client's own."""
    chosen = options.get("model")
    if chosen is not None:
        return chosen
    for attribute in ("model", "model_name"):
        value: object = getattr(client, attribute, None)
        if isinstance(value, str):
            return value
    return None


def usage_in(messages: Sequence[ChatMessage]) -> UsageDetails | None:
    """The usage a client reported inside its messages (``UsageContent``), summed."""
    total: UsageDetails | None = None
    for message in messages:
        for content in message.contents:
            if type(content) is UsageContent:
                total = content.details if total is None else total + content.details
    return total


def _part(content: object) -> dict[str, object]:
    if type(content) is TextContent:
        return {"type": "text", "content": content.text}
    if type(content) is FunctionCallContent:
        return {
            "type": "tool_call",
            "id": content.call_id,
            "name": content.name,
            "arguments": content.arguments,
        }
    if type(content) is FunctionResultContent:
        response = content.exception if content.exception is not None else content.result
        return {"type": "tool_call_response", "id": content.call_id, "response": response}
    return {"type": str(getattr(content, "type", type(content).__name__))}


def messages_json(messages: Sequence[ChatMessage]) -> str:
    """Messages in the conventions' ``gen_ai.input.messages`` / ``output.messages`` JSON form."""
    return tr.content_json(
        [
            {
                "role": m.role.value,
                **({"name": m.author_name} if m.author_name else {}),
                "parts": [_part(c) for c in m.contents],
            }
            for m in messages
        ]
    )


def agent_span(
    *,
    name: str | None,
    agent_id: str,
    description: str | None,
    client: ChatClient,
    thread: AgentThread,
    stream: bool,
) -> tr.Span | None:
    """Start ``invoke_agent {name}`` for one run on ``thread``."""
    return tr.start_span(
        f"invoke_agent {name}" if name else "invoke_agent",
        keep_unsampled=True,
        attributes=lambda: {
            tr.OPERATION: "invoke_agent",
            tr.PROVIDER: provider_name(client),
            tr.AGENT_NAME: name,
            tr.AGENT_ID: agent_id,
            tr.AGENT_DESCRIPTION: description,
            tr.CONVERSATION_ID: thread.id,
            tr.USER_ID: thread.user_id,
            "threadline.stream": stream,
        },
    )


def end_agent(
    span: tr.Span | None,
    *,
    usage: UsageDetails | None,
    response_id: str | None,
    produced: Sequence[ChatMessage],
) -> None:
    """End a successful run's span with its token totals (and its output, when captured)."""
    if span is None or not span.is_recording():
        return
    if usage is not None:
        tr.set_if(
            span,
            {tr.INPUT_TOKENS: usage.input_token_count, tr.OUTPUT_TOKENS: usage.output_token_count},
        )
    tr.set_if(span, {tr.RESPONSE_ID: response_id})
    if tr.capture_content():
        span.set_attribute(tr.OUTPUT_MESSAGES, messages_json(produced))
    span.end()


def chat_span(
    parent: tr.Span | None,
    *,
    client: ChatClient,
    options: ChatOptions,
    request: Sequence[ChatMessage],
) -> tr.Span | None:
    """Start ``chat {model}`` under the run's span (a client span: the model is called out)."""
    if parent is None:  # no run span: tracing is off (or the run was not sampled)
        return None
    model = model_name(client, options)
    span = tr.start_span(
        f"chat {model}" if model else "chat",
        kind=tr.SpanKind.CLIENT,
        parent=parent,
        attributes=lambda: {
            tr.OPERATION: "chat",
            tr.PROVIDER: provider_name(client),
            tr.REQUEST_MODEL: model,
        },
    )
    if span is not None:
        if tr.capture_content():
            span.set_attribute(tr.INPUT_MESSAGES, messages_json(request))
    return span


def end_chat(
    span: tr.Span | None,
    *,
    started: float,
    client: ChatClient,
    options: ChatOptions,
    answer: Sequence[ChatMessage] = (),
    usage: UsageDetails | None = None,
    response_id: str | None = None,
    finish_reason: str | None = None,
    error: BaseException | None = None,
) -> None:
    """End a model call: its span with what came back (or its error), and the client metrics.

    ``usage`` may also come inside ``answer`` (``UsageContent``), as some clients report it.
    """
    if span is None and not tr.metrics_on():
        return
    if usage is None:
        usage = usage_in(answer)
    tr.record_model_call(
        started=started,
        provider=lambda: provider_name(client),
        model=lambda: model_name(client, options),
        input_tokens=usage.input_token_count if usage else None,
        output_tokens=usage.output_token_count if usage else None,
        error=error,
    )
    if span is None:
        return
    if error is not None:
        tr.end_error(span, error)
        return
    if finish_reason is None:
        called = any(type(c) is FunctionCallContent for m in answer for c in m.contents)
        finish_reason = "tool_calls" if called else "stop"
    tr.set_if(
        span,
        {
            tr.RESPONSE_ID: response_id,
            tr.FINISH_REASONS: [finish_reason],
            tr.INPUT_TOKENS: usage.input_token_count if usage else None,
            tr.OUTPUT_TOKENS: usage.output_token_count if usage else None,
        },
    )
    if tr.capture_content():
        span.set_attribute(tr.OUTPUT_MESSAGES, messages_json(answer))
    span.end()


def store_span(
    operation: str, store: ChatMessageStore, thread_id: str, parent: tr.Span | None
) -> tr.Span | None:
    """Start ``{operation} {store kind}``: a read or append of a thread's store.

    Under ``parent`` when given, else under the current span (an ``add_chat_message`` of a group
    chat's relay, under its turn).
    """
    kind = store_kind(store)
    return tr.start_span(
        f"{operation} {kind}",
        kind=tr.SpanKind.CLIENT,
        parent=parent,
        attributes=lambda: {
            tr.DB_SYSTEM: _DB_SYSTEMS.get(kind, kind),
            tr.DB_OPERATION: operation,
            tr.THREAD_ID: thread_id,
        },
    )


async def traced_append(
    store: ChatMessageStore,
    thread_id: str,
    messages: Sequence[ChatMessage],
    *,
    expected_version: int | None,
    parent: tr.Span | None,
) -> int:
    """``store.add_messages``, traced as ``append {kind}`` (messages written, the new version)."""
    span = store_span("append", store, thread_id, parent)
    if span is None:
        return await store.add_messages(messages, expected_version=expected_version)
    span.set_attribute(tr.MESSAGE_COUNT, len(messages))
    try:
        with tr.activated(span):
            version = await store.add_messages(messages, expected_version=expected_version)
    except BaseException as exc:
        tr.end_error(span, exc)
        raise
    span.set_attribute(tr.STORE_VERSION, version)
    span.end()
    return version
