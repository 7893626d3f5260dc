"""``OpenAIResponsesClient``: the Responses API, with service-managed or local threads.

With ``store=True`` (the default) the service keeps the conversation: a thread holds only an id and
each turn sends just its new messages. The id is the last response's id (continued with
``previous_response_id``), or a conversation object's id (``conv_...``, continued with
``conversation``) when ``use_conversations=True``. With ``store=False`` the service keeps nothing
and threads keep their messages locally, like Chat Completions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import openai

from threadline.clients._openai_common import (
    DEFAULT_MAX_RETRIES,
    OpenAIConnection,
    call_headers,
    sampling_kwargs,
    usage_of,
    wrap_error,
)
from threadline.clients.base import ChatOptions
from threadline.exceptions import ClientError, UsageError
from threadline.openai_wire import (
    items_to_messages,
    messages_to_items,
    split_system,
    tool_to_responses,
)
from threadline.types.contents import Content, FunctionCallContent, TextContent, UsageContent
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = ["OpenAIResponsesClient"]

_PAGE = 20
"""Items per request when copying a conversation (the API's limit for one create)."""


class OpenAIResponsesClient(OpenAIConnection):
    """A chat client for the Responses API (OpenAI, a threadline server, or compatible).

    Args:
        model: the model to call unless a run's options name another.
        store: keep conversations in the service (service-managed threads); False keeps them local.
        use_conversations: with ``store``, keep each thread in a conversation object rather than a
            chain of responses; the thread's id is then the conversation's.
        base_url: the API root (``OPENAI_BASE_URL`` or the OpenAI default when omitted).
        api_key: the bearer key (``OPENAI_API_KEY`` when omitted).
        timeout: seconds per attempt.
        max_retries: retries on connection errors, 429 and 5xx, with backoff (the SDK's).
        client: an ``openai.AsyncOpenAI`` to use instead of building one.
    """

    service_kind = "openai-responses"

    def __init__(
        self,
        model: str,
        *,
        store: bool = True,
        use_conversations: bool = False,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.use_conversations = use_conversations
        super().__init__(
            client=client,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
        # Requests are built as dicts, so the SDK's overloads cannot be resolved statically: its
        # answers are typed Any here and read field by field.
        self._create: Any = self.client.responses.create

    def __repr__(self) -> str:
        return (
            f"OpenAIResponsesClient(model={self.model!r}, store={self.store}, "
            f"service={self._service!r})"
        )

    @property
    def stores_history(self) -> bool:
        """True with ``store``: threads then hold a response or conversation id."""
        return self.store

    async def _request(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> dict[str, Any]:
        instructions, rest = split_system(messages)
        kwargs: dict[str, Any] = {
            "model": options.get("model", self.model),
            "input": messages_to_items(rest),
            "store": self.store,
            "extra_headers": call_headers(),
            **sampling_kwargs(options, max_tokens_key="max_output_tokens"),
        }
        if instructions is not None:
            kwargs["instructions"] = instructions
        tools = options.get("tools")
        if tools:
            kwargs["tools"] = [tool_to_responses(t) for t in tools]
            if "tool_choice" in options:
                kwargs["tool_choice"] = options["tool_choice"]
        if self.store:
            conversation_id = options.get("conversation_id")
            if conversation_id is None and self.use_conversations:
                conversation_id = await self._new_conversation()
            if conversation_id is not None and conversation_id.startswith("conv"):
                kwargs["conversation"] = conversation_id
            elif conversation_id is not None:
                kwargs["previous_response_id"] = conversation_id
        return kwargs

    async def _new_conversation(self) -> str:
        try:
            conversation = await self.client.conversations.create(extra_headers=call_headers())
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return conversation.id

    def _thread_id(self, kwargs: dict[str, Any], response_id: str) -> str | None:
        if not self.store:
            return None
        return cast(str | None, kwargs.get("conversation")) or response_id

    def _messages(self, output: Sequence[Any]) -> list[ChatMessage]:
        # Read the SDK's objects directly: dumping them to dicts first costs more than the rest
        # of a turn's client-side work.
        produced: list[ChatMessage] = []
        calls: list[Content] = []
        for item in output:
            kind = getattr(item, "type", None)
            if kind == "message":
                parts: list[Content] = []
                for part in item.content:
                    text = (
                        getattr(part, "text", None)
                        if part.type == "output_text"
                        else getattr(part, "refusal", None)
                    )
                    if isinstance(text, str):
                        parts.append(TextContent(text))
                if parts:
                    produced.append(ChatMessage(Role.ASSISTANT, contents=parts, message_id=item.id))
            elif kind == "function_call":
                if not isinstance(item.arguments, str) or not isinstance(item.name, str):
                    raise ClientError(f"{self._service} sent a malformed function call: {item!r}")
                calls.append(
                    FunctionCallContent(
                        call_id=item.call_id, name=item.name, arguments=item.arguments
                    )
                )
        if calls:
            produced.append(ChatMessage(Role.ASSISTANT, contents=calls))
        return produced

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """One response; ``conversation_id`` of the result continues the thread."""
        kwargs = await self._request(messages, options)
        try:
            response: Any = await self._create(**kwargs)
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        if response.status == "failed":
            error = response.error.message if response.error else "no reason given"
            raise ClientError(f"{self._service} failed response {response.id}: {error}")
        produced = self._messages(response.output)
        has_calls = any(type(c) is FunctionCallContent for m in produced for c in m.contents)
        return ChatResponse(
            messages=tuple(produced),
            response_id=response.id,
            conversation_id=self._thread_id(kwargs, response.id),
            usage=usage_of(response.usage),
            finish_reason="tool_calls" if has_calls else "stop",
        )

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream a response: text deltas, each function call once done, then usage and the id."""
        kwargs = await self._request(messages, options)
        try:
            stream: Any = await self._create(**kwargs, stream=True)
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        try:
            event: Any
            async for event in stream:
                kind = event.type
                if kind == "response.output_text.delta":
                    yield ChatResponseUpdate(
                        contents=(TextContent(event.delta),), message_id=event.item_id
                    )
                elif kind == "response.output_item.done" and event.item.type == "function_call":
                    item = event.item
                    yield ChatResponseUpdate(
                        contents=(
                            FunctionCallContent(
                                call_id=item.call_id, name=item.name, arguments=item.arguments
                            ),
                        ),
                        message_id=item.id,
                    )
                elif kind == "response.completed":
                    response = event.response
                    usage = usage_of(response.usage)
                    yield ChatResponseUpdate(
                        contents=(UsageContent(usage),) if usage else (),
                        response_id=response.id,
                        conversation_id=self._thread_id(kwargs, response.id),
                        finish_reason="stop",
                    )
                elif kind in ("response.failed", "response.incomplete"):
                    response = event.response
                    error = response.error.message if response.error else kind
                    raise ClientError(f"{self._service} response {response.id} ended: {error}")
                elif kind == "error":
                    raise ClientError(f"{self._service} stream error: {event.message}")
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        finally:
            await stream.close()  # also on cancellation: never leave the connection open

    async def fork_conversation(self, conversation_id: str) -> str:
        """Branch a stored thread.

        A response id needs no copy: responses are immutable, so both branches continue from the
        same response and diverge with their next ``previous_response_id``. A conversation object is
        copied item by item into a new conversation.
        """
        if not conversation_id.startswith("conv"):
            return conversation_id
        try:
            items: list[dict[str, Any]] = []
            async for item in self.client.conversations.items.list(
                conversation_id, order="asc", limit=100
            ):
                items.append(item.model_dump(exclude_none=True))
            keep = messages_to_items(
                items_to_messages(
                    [
                        i
                        for i in items
                        if i.get("type") in ("message", "function_call", "function_call_output")
                    ],
                    where="items",
                )
            )
            new: Any = await self.client.conversations.create(
                items=cast(Any, keep[:_PAGE]), extra_headers=call_headers()
            )
            for start in range(_PAGE, len(keep), _PAGE):
                await self.client.conversations.items.create(
                    new.id,
                    items=cast(Any, keep[start : start + _PAGE]),
                    extra_headers=call_headers(),
                )
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return new.id

    async def add_conversation_messages(
        self, conversation_id: str | None, messages: Sequence[ChatMessage]
    ) -> str:
        """Add messages to a conversation object as items, without a response (a new one for None).

        Implements ``SupportsAddMessages``, so group chats can show a Responses-hosted participant
        what the others said. A thread continued by response id (a chain of responses, not a
        conversation object) cannot take items: start such threads with ``use_conversations=True``
        or leave them unbound until their first message, which then makes a conversation.

        Raises:
            UsageError: ``store=False`` (threads are local) or the id is a response id.
        """
        if not self.store:
            raise UsageError(
                "this OpenAIResponsesClient keeps threads locally (store=False); add messages to "
                "the thread's store instead"
            )
        if conversation_id is not None and not conversation_id.startswith("conv"):
            raise UsageError(
                f"thread {conversation_id!r} is a chain of responses, which cannot take messages "
                "without a response; use OpenAIResponsesClient(use_conversations=True) for "
                "threads that others' messages are added to"
            )
        items = messages_to_items(messages)
        try:
            if conversation_id is None:
                new: Any = await self.client.conversations.create(
                    items=cast(Any, items[:_PAGE]), extra_headers=call_headers()
                )
                conversation_id = cast(str, new.id)
                items = items[_PAGE:]
            for start in range(0, len(items), _PAGE):
                await self.client.conversations.items.create(
                    conversation_id,
                    items=cast(Any, items[start : start + _PAGE]),
                    extra_headers=call_headers(),
                )
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return conversation_id
