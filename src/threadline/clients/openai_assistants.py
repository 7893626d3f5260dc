"""``OpenAIAssistantsClient``: the Assistants API (assistant + thread + runs); service threads.

The service keeps each thread's messages; a threadline thread holds only the service thread id.
Each call adds the turn's new messages to the run (``additional_messages``), or, when the model had
called tools, submits their outputs to the waiting run. The agent's instructions and tools are sent
with every run, so one assistant object (created on first use unless given) serves every agent.

The SDK marks this API deprecated and warns on each call; the warnings are silenced around the
calls (synchronously, so no other code's warnings are affected).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

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
from threadline.openai_wire import split_system, tool_to_chat
from threadline.types.contents import (
    Content,
    DataContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
    UsageContent,
)
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = ["OpenAIAssistantsClient"]

_T = TypeVar("_T")
_TERMINAL = {"completed", "requires_action", "failed", "cancelled", "expired", "incomplete"}


def _quiet(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args, **kwargs)


def _message_param(message: ChatMessage) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    for content in message.contents:
        if type(content) is TextContent:
            parts.append({"type": "text", "text": content.text})
        elif (type(content) is DataContent or type(content) is UriContent) and (
            message.role == Role.USER
        ):
            parts.append({"type": "image_url", "image_url": {"url": content.uri}})
    if not parts or message.role not in (Role.USER, Role.ASSISTANT):
        return None
    return {"role": str(message.role), "content": parts}


class OpenAIAssistantsClient(OpenAIConnection):
    """A chat client for the Assistants API (OpenAI, Foundry-style agents, a threadline server).

    Args:
        model: the model of the assistant created on first use (and of each run).
        assistant_id: an existing assistant to run; one is created on first use when omitted.
        base_url: the API root (``OPENAI_BASE_URL`` or the OpenAI default when omitted).
        api_key: the bearer key (``OPENAI_API_KEY`` when omitted).
        timeout: seconds per HTTP attempt.
        max_retries: retries on connection errors, 429 and 5xx, with backoff (the SDK's).
        run_timeout: seconds to wait for a run to reach a terminal state when polling.
        client: an ``openai.AsyncOpenAI`` to use instead of building one.
    """

    service_kind = "openai-assistants"

    def __init__(
        self,
        model: str,
        *,
        assistant_id: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        run_timeout: float = 600.0,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.assistant_id = assistant_id
        self.run_timeout = run_timeout
        super().__init__(
            client=client,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
        # The SDK marks the whole Assistants API deprecated and its typed overloads cannot be
        # resolved for requests built as dicts: it is used as Any, answers read field by field.
        self._beta: Any = self.client.beta
        self._assistant_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OpenAIAssistantsClient(model={self.model!r}, service={self._service!r})"

    @property
    def stores_history(self) -> bool:
        """True: the service keeps each thread's messages."""
        return True

    async def _assistant(self) -> str:
        async with self._assistant_lock:
            if self.assistant_id is None:
                assistant = await _quiet(
                    self._beta.assistants.create,
                    model=self.model,
                    name="threadline",
                    extra_headers=call_headers(),
                )
                self.assistant_id = assistant.id
            return self.assistant_id

    async def _thread(self, options: ChatOptions) -> str:
        thread_id = options.get("conversation_id")
        if thread_id is not None:
            return thread_id
        thread = await _quiet(self._beta.threads.create, extra_headers=call_headers())
        return thread.id

    async def _waiting_run(self, thread_id: str) -> Any | None:
        runs = await _quiet(self._beta.threads.runs.list, thread_id, limit=1, order="desc")
        latest = runs.data[0] if runs.data else None
        return latest if latest is not None and latest.status == "requires_action" else None

    async def _start(
        self, messages: Sequence[ChatMessage], options: ChatOptions, *, stream: bool
    ) -> tuple[str, Any]:
        """Submit tool outputs to a waiting run, or start a run with the new messages."""
        thread_id = await self._thread(options)
        instructions, rest = split_system(messages)
        results = [
            c
            for m in rest
            if m.role == Role.TOOL
            for c in m.contents
            if type(c) is FunctionResultContent
        ]
        runs = self._beta.threads.runs
        extra = {"extra_headers": call_headers()}
        if stream:
            extra["stream"] = True  # pyright: ignore[reportArgumentType]
        if results:
            waiting = await self._waiting_run(thread_id)
            if waiting is not None:
                from threadline.openai_wire import result_text

                outputs = [{"tool_call_id": r.call_id, "output": result_text(r)} for r in results]
                run = await _quiet(
                    runs.submit_tool_outputs,
                    waiting.id,
                    thread_id=thread_id,
                    tool_outputs=outputs,
                    **extra,
                )
                return thread_id, run
        kwargs: dict[str, Any] = {
            "assistant_id": await self._assistant(),
            "model": options.get("model", self.model),
            "additional_messages": [p for m in rest if (p := _message_param(m)) is not None],
            **sampling_kwargs(options, max_tokens_key="max_completion_tokens"),
            **extra,
        }
        kwargs.pop("user", None)
        if instructions is not None:
            kwargs["instructions"] = instructions
        tools = options.get("tools")
        kwargs["tools"] = [tool_to_chat(t) for t in tools] if tools else []
        run = await _quiet(runs.create, thread_id, **kwargs)
        return thread_id, run

    async def _poll(self, thread_id: str, run: Any) -> Any:
        deadline = time.monotonic() + self.run_timeout
        delay = 0.1
        while run.status not in _TERMINAL:
            if time.monotonic() > deadline:
                raise ClientError(
                    f"run {run.id} on {self._service} still {run.status!r} after "
                    f"{self.run_timeout}s; raise run_timeout or check the service"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            run = await _quiet(self._beta.threads.runs.retrieve, run.id, thread_id=thread_id)
        return run

    def _check(self, run: Any) -> None:
        if run.status in ("failed", "cancelled", "expired", "incomplete"):
            reason = run.last_error.message if run.last_error else run.status
            raise ClientError(f"run {run.id} on {self._service} {run.status}: {reason}")

    @staticmethod
    def _calls(run: Any) -> list[FunctionCallContent]:
        action = run.required_action
        if action is None:
            return []
        return [
            FunctionCallContent(
                call_id=c.id, name=c.function.name, arguments=c.function.arguments or "{}"
            )
            for c in action.submit_tool_outputs.tool_calls
        ]

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """Run the assistant on the thread (polling until done); the result names the thread."""
        try:
            thread_id, run = await self._start(messages, options, stream=False)
            run = await self._poll(thread_id, run)
            self._check(run)
            produced: list[ChatMessage] = []
            calls = self._calls(run) if run.status == "requires_action" else []
            page = await _quiet(
                self._beta.threads.messages.list,
                thread_id,
                run_id=run.id,
                order="asc",
                limit=100,
            )
            message: Any
            for message in page.data:
                if message.role != "assistant":
                    continue
                contents: list[Content] = [
                    TextContent(part.text.value) for part in message.content if part.type == "text"
                ]
                if contents:
                    produced.append(
                        ChatMessage(Role.ASSISTANT, contents=contents, message_id=message.id)
                    )
            if calls:
                produced.append(ChatMessage(Role.ASSISTANT, contents=list(calls)))
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return ChatResponse(
            messages=tuple(produced),
            response_id=run.id,
            conversation_id=thread_id,
            usage=usage_of(run.usage),
            finish_reason="tool_calls" if calls else "stop",
        )

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream a run: text deltas, tool calls whole when the run waits for them, then usage."""
        try:
            thread_id, stream = await self._start(messages, options, stream=True)
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        try:
            event: Any
            async for event in stream:
                kind = cast(str, event.event)
                if kind == "thread.message.delta":
                    part: Any
                    for part in cast(list[Any], event.data.delta.content or []):
                        if part.type == "text" and part.text is not None and part.text.value:
                            yield ChatResponseUpdate(
                                contents=(TextContent(part.text.value),),
                                message_id=event.data.id,
                                conversation_id=thread_id,
                            )
                elif kind in ("thread.run.requires_action", "thread.run.completed"):
                    run = event.data
                    usage = usage_of(run.usage)
                    contents: list[Content] = list(self._calls(run))
                    if usage is not None:
                        contents.append(UsageContent(usage))
                    yield ChatResponseUpdate(
                        contents=tuple(contents),
                        response_id=run.id,
                        conversation_id=thread_id,
                        message_id=f"{run.id}-end",
                        finish_reason="tool_calls" if kind.endswith("requires_action") else "stop",
                    )
                elif kind in ("thread.run.failed", "thread.run.cancelled", "thread.run.expired"):
                    self._check(event.data)
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        finally:
            await stream.close()  # also on cancellation: never leave the connection open

    async def fork_conversation(self, conversation_id: str) -> str:
        """Copy a thread's messages into a new service thread.

        The Assistants API shows only messages, so tool calls and their results inside the
        thread are not carried over (the assistant's answers that used them are).
        """
        try:
            params: list[dict[str, Any]] = []
            after: str | None = None
            while True:
                extra: dict[str, Any] = {"after": after} if after else {}
                page = await _quiet(
                    self._beta.threads.messages.list,
                    conversation_id,
                    order="asc",
                    limit=100,
                    **extra,
                )
                for message in page.data:
                    parts = [
                        {"type": "text", "text": part.text.value}
                        for part in message.content
                        if part.type == "text"
                    ]
                    if parts:
                        params.append({"role": message.role, "content": parts})
                if not page.has_more or not page.data:
                    break
                after = page.data[-1].id
            thread = await _quiet(
                self._beta.threads.create, messages=params, extra_headers=call_headers()
            )
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return thread.id

    async def add_conversation_messages(
        self, conversation_id: str | None, messages: Sequence[ChatMessage]
    ) -> str:
        """Post messages to a service thread without starting a run (a new thread for ``None``).

        Implements ``SupportsAddMessages``, so group chats can show an Assistants-hosted
        participant what the others said. The API takes only user and assistant messages of text
        and images; anything else has no form here and is skipped.
        """
        params = [p for p in (_message_param(m) for m in messages) if p is not None]
        try:
            if conversation_id is None:
                thread = await _quiet(
                    self._beta.threads.create, messages=params, extra_headers=call_headers()
                )
                return thread.id
            for param in params:
                await _quiet(
                    self._beta.threads.messages.create,
                    conversation_id,
                    **param,
                    extra_headers=call_headers(),
                )
        except openai.OpenAIError as exc:
            raise wrap_error(exc, self._service) from exc
        return conversation_id
