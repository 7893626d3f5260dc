"""``OpenAIChatClient``: the Chat Completions API; threads keep their history locally."""

from __future__ import annotations

import json
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
from threadline.exceptions import ClientError
from threadline.openai_wire import messages_to_chat, tool_to_chat
from threadline.types.contents import Content, FunctionCallContent, TextContent, UsageContent
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = ["OpenAIChatClient"]


class OpenAIChatClient(OpenAIConnection):
    """A chat client for the Chat Completions API (OpenAI, a threadline server, or compatible).

    Chat Completions is stateless: every call carries the whole history, so threads of this client
    keep their messages locally (``stores_history`` is False) and move freely between agents.

    Args:
        model: the model to call unless a run's options name another.
        base_url: the API root (``OPENAI_BASE_URL`` or the OpenAI default when omitted).
        api_key: the bearer key (``OPENAI_API_KEY`` when omitted).
        timeout: seconds per attempt.
        max_retries: retries on connection errors, 429 and 5xx, with backoff (the SDK's).
        client: an ``openai.AsyncOpenAI`` to use instead of building one.
    """

    service_kind = "openai-chat"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        super().__init__(
            client=client,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
        # Requests are built as dicts, so the SDK's overloads cannot be resolved statically: its
        # answers are typed Any here and read field by field.
        self._create: Any = self.client.chat.completions.create

    def __repr__(self) -> str:
        return f"OpenAIChatClient(model={self.model!r}, service={self._service!r})"

    @property
    def stores_history(self) -> bool:
        """False: Chat Completions keeps nothing between calls."""
        return False

    def _request(self, messages: Sequence[ChatMessage], options: ChatOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": options.get("model", self.model),
            "messages": messages_to_chat(messages),
            "extra_headers": call_headers(),
            **sampling_kwargs(options, max_tokens_key="max_completion_tokens"),
        }
        stop = options.get("stop")
        if stop is not None:
            kwargs["stop"] = list(stop)
        seed = options.get("seed")
        if seed is not None:
            kwargs["seed"] = seed
        tools = options.get("tools")
        if tools:
            kwargs["tools"] = [tool_to_chat(t) for t in tools]
            if "tool_choice" in options:
                kwargs["tool_choice"] = options["tool_choice"]
        return kwargs

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """One completion."""
        try:
            completion: Any = await self._create(**self._request(messages, options))
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        if not completion.choices:
            raise ClientError(f"{self._service} returned a completion without choices")
        choice = completion.choices[0]
        contents: list[Content] = []
        if choice.message.content:
            contents.append(TextContent(choice.message.content))
        call: Any
        for call in cast(list[Any], choice.message.tool_calls or []):
            function = getattr(call, "function", None)
            if function is not None:
                contents.append(
                    FunctionCallContent(
                        call_id=call.id, name=function.name, arguments=function.arguments or "{}"
                    )
                )
        return ChatResponse(
            messages=(ChatMessage(Role.ASSISTANT, contents=contents),),
            response_id=completion.id,
            usage=usage_of(completion.usage),
            finish_reason=choice.finish_reason,
        )

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream a completion: text as it comes, each tool call whole once complete, then usage."""
        kwargs = self._request(messages, options)
        message_id = new_message_id()
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        response_id: str | None = None
        try:
            stream: Any = await self._create(
                **kwargs, stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        try:
            async for chunk in stream:
                response_id = chunk.id
                if chunk.usage is not None:
                    usage = usage_of(chunk.usage)
                    if usage is not None:
                        yield ChatResponseUpdate(
                            contents=(UsageContent(usage),),
                            message_id=message_id,
                            response_id=response_id,
                        )
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta.content:
                    yield ChatResponseUpdate(
                        contents=(TextContent(delta.content),),
                        message_id=message_id,
                        response_id=response_id,
                    )
                tool_call: Any
                for tool_call in cast(list[Any], delta.tool_calls or []):
                    entry = calls.setdefault(
                        tool_call.index, {"id": "", "name": "", "arguments": ""}
                    )
                    if tool_call.id:
                        entry["id"] = tool_call.id
                    if tool_call.function is not None:
                        entry["name"] += tool_call.function.name or ""
                        entry["arguments"] += tool_call.function.arguments or ""
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        finally:
            await stream.close()  # also on cancellation: never leave the connection open
        for index in sorted(calls):
            entry = calls[index]
            try:
                json.loads(entry["arguments"] or "{}")
            except ValueError as exc:
                raise ClientError(
                    f"{self._service} streamed invalid JSON arguments for tool "
                    f"{entry['name']!r}: {entry['arguments']!r:.200}"
                ) from exc
            yield ChatResponseUpdate(
                contents=(
                    FunctionCallContent(
                        call_id=entry["id"],
                        name=entry["name"],
                        arguments=entry["arguments"] or "{}",
                    ),
                ),
                message_id=message_id,
                response_id=response_id,
            )
        yield ChatResponseUpdate(
            message_id=message_id, response_id=response_id, finish_reason=finish
        )
