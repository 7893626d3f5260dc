"""``LocalChatClient``: a GGUF chat model running in-process on llama.cpp, no API key, no network.

The default model is Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), shipped as six part wheels by the
``local`` extra and assembled and verified on first use (see :func:`resolve_model`). Other named
models (``qwen-1.5b``, ``smollm2-135m``) or any GGUF file can be passed.

How it fits the event loop: llama.cpp calls block, so every one of them (loading, tokenizing,
generating) runs on one worker thread owned by the client, which also keeps calls in order since
a ``Llama`` object is not safe to share between threads. Beyond that, one generation at a time
runs in the whole process (a lock shared by all clients): llama.cpp already uses every physical
core for one, and two at once would only make both slower. Streamed tokens are handed from the
worker to the async iterator through the loop; when the consumer stops iterating (or is
cancelled, e.g. by Ctrl-C) the worker is told to stop and generation ends after the current token.

Prompts: ChatML models (all the named ones) are prompted with our own ChatML/Qwen template and
tool calls are read back from the reply (see :mod:`._llama_messages` for why); a model whose
template is not ChatML is prompted through llama-cpp-python with its own template, without tools.

Side jobs: a memory's fact extraction or a summary on the same client evaluates another prompt
between two chat turns; the chat's evaluated prompt is kept aside meanwhile and put back for the
next turn (:mod:`._llama_states`), so the chat still pays only for its new tokens.

Context window: the request is cut to fit with the token-budget reducer
(:mod:`threadline.history`), counting each message with the model's own tokenizer as
it is rendered into the prompt, and keeping room for the reply; the finished prompt is counted
again, so the window is never overrun. Only the request is reduced; the thread keeps its whole
history. Usage reports the prompt's tokens and the reply's tokens (re-tokenized).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

from threadline.clients._llama_grammar import response_format_to_grammar
from threadline.clients._llama_loading import (
    GENERATION_LOCK,
    cpu_has_amx,
    default_threads,
    import_llama,
    without_extra_buffers,
)
from threadline.clients._llama_messages import (
    DEFAULT_SYSTEM,
    END,
    ReplyParser,
    call_names,
    generation_prompt,
    render_message,
    required_call_prefill,
    to_llama_message,
    tools_section,
)
from threadline.clients._llama_states import PrefixStates
from threadline.clients._llama_tool_replies import (
    grounded_calls,
    keep_known_arguments,
    looks_like_call,
)
from threadline.clients._model_files import (
    DEFAULT_MODEL,
    MODELS,
    ProgressCallback,
    find_spec,
    models_dir,
    part_paths,
    resolve_model,
)
from threadline.clients.base import ChatOptions
from threadline.exceptions import ClientError, ThreadlineError
from threadline.history import reduce_to_token_budget
from threadline.types.contents import (
    Content,
    FunctionCallContent,
    TextContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage, Role, new_message_id
from threadline.types.responses import ChatResponse, ChatResponseUpdate, messages_from_updates

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LocalChatClient",
    "default_model_path",
    "models_dir",
    "resolve_model",
]

_PROMPT_MARGIN = 16
"""Tokens kept free beyond the counted messages: joins between separately counted blocks."""
_SETTLE_SECONDS = 0.5
"""How long a closed stream waits for the worker to stop (one token takes a few ms)."""
_SAMPLING = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repeat_penalty": 1.05}
"""Qwen2.5's recommended sampling, used where a call's options set nothing else."""
_DONE = object()


def default_model_path() -> Path:
    """The default model's GGUF file, assembled first if needed (see :func:`resolve_model`)."""
    return resolve_model(None)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Final:
    """What the worker hands over when a reply ends."""

    text: str
    contents: tuple[Content, ...]
    finish_reason: str | None
    usage: UsageDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    prompt: list[int] | list[dict[str, Any]]
    """Token ids for ChatML prompts; message dicts for the model's own template."""
    prefill: str
    tool_names: tuple[str, ...]
    kwargs: dict[str, Any]


class LocalChatClient:
    """A chat model running in this process on llama.cpp.

    The model loads on the first call (under a second for the default one, plus a few seconds
    the very first time, when its file is assembled); call :meth:`load` first to fail early.

    Args:
        model: a named model (``qwen-0.5b``, the default; ``qwen-1.5b``; ``smollm2-135m``) or the
            path of a GGUF chat model.
        n_ctx: the context window in tokens; the named model's own choice when omitted (8,192
            for the Qwen models), else 4,096. History beyond it is left out of the request.
        n_threads: CPU threads for generation; the physical cores when omitted.
        max_tokens: reply length when the call's options set none; this much of the window is
            kept free for the reply.
        chat_format: a llama-cpp-python chat format to use instead of our ChatML template
            (plain chat only; tools need the ChatML template).
        use_extra_buffers: llama.cpp's extra (repacking) buffer types; ``None`` turns them off
            only when llama.cpp reports AMX, whose kernels crash in the current release.
        on_progress: called with ``(bytes done, bytes in all)`` while a named model's file is
            assembled on first use (from the worker thread).
        llama_kwargs: further ``llama_cpp.Llama`` arguments, passed unchanged.

    Raises:
        ClientError: an unknown model name, a missing file or missing model packages.
        ValueError: ``n_ctx`` or ``max_tokens`` out of range.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        max_tokens: int = 512,
        chat_format: str | None = None,
        use_extra_buffers: bool | None = None,
        on_progress: ProgressCallback | None = None,
        llama_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        spec = find_spec(model)
        n_ctx = n_ctx if n_ctx is not None else (spec.n_ctx if spec is not None else 4096)
        if n_ctx < 64:
            raise ValueError(f"n_ctx must be at least 64 tokens, got {n_ctx}")
        if not 0 < max_tokens < n_ctx:
            raise ValueError(f"max_tokens must be between 1 and n_ctx ({n_ctx}), got {max_tokens}")
        if spec is None:
            self.model_path = resolve_model(model)  # checks that the file exists
        elif spec.sha256 is None:
            self.model_path = part_paths(spec)[0]
        else:
            part_paths(spec)  # fail now, with the install command, when a part is missing
            self.model_path = models_dir() / spec.file_name
        self._model = model
        self.model_name = spec.name if spec is not None else self.model_path.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.max_tokens = max_tokens
        self.chat_format = chat_format
        self.use_extra_buffers = use_extra_buffers
        self.on_progress = on_progress
        self.llama_kwargs = dict(llama_kwargs or {})
        self._llama: Llama | None = None
        self._chatml = True
        self._executor: ThreadPoolExecutor | None = None
        self._counts: dict[tuple[str, str], int] = {}
        """Token counts by (message id, tools text) (messages are immutable); worker only."""
        self._cuts: dict[str, None] = {}
        """Ids of the first messages kept by recent reductions, oldest first (see ``_select``)."""
        self._last_sent: tuple[ChatMessage, ...] = ()
        self._states: PrefixStates | None = None
        """Evaluated prompts kept aside while other prompts run (see :mod:`._llama_states`)."""

    def __repr__(self) -> str:
        return f"LocalChatClient({self.model_name!r}, n_ctx={self.n_ctx})"

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
        path = resolve_model(self._model, progress=self.on_progress)
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
            with GENERATION_LOCK:
                if extra:
                    llm = llama_cpp.Llama(str(path), **kwargs)
                else:
                    with without_extra_buffers(llama_cpp):
                        llm = llama_cpp.Llama(str(path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ClientError(
                f"llama.cpp could not load {str(path)!r}: {exc}; is it a GGUF chat model?"
            ) from exc
        template = str(llm.metadata.get("tokenizer.chat_template", ""))
        self._chatml = self.chat_format is None and (
            find_spec(self._model) is not None or "<|im_start|>" in template
        )
        self._llama = cast("Llama", llm)
        self._states = PrefixStates(llama_cpp)
        return self._llama

    async def load(self) -> None:
        """Load the model now (it otherwise loads on the first call). Safe to call again.

        Raises:
            ClientError: llama-cpp-python is missing, the model's parts fail their integrity
                check, or the file is not a usable model.
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
        self._states = None
        if llm is not None:
            llm.close()

    # -- requests ----------------------------------------------------------------------------

    def _tokens(self, llm: Llama, text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _count(self, llm: Llama, message: ChatMessage, tools: str, names: Mapping[str, str]) -> int:
        key = (message.message_id, tools if message.role == Role.SYSTEM else "")
        cached = self._counts.get(key)
        if cached is None:
            cached = self._tokens(llm, render_message(message, tools=key[1], names=names))
            if len(self._counts) > 100_000:
                self._counts.clear()
            self._counts[key] = cached
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
        """Reduce the history to the window and write the prompt (runs on the worker)."""
        tools = list(options.get("tools") or ())
        use_tools = bool(tools) and options.get("tool_choice") != "none"
        if use_tools and not self._chatml:
            raise ClientError(
                f"{self.model_name} is not prompted with the ChatML template, so it cannot be "
                "offered tools; use a ChatML model (e.g. the default qwen-0.5b) or no tools"
            )
        section = tools_section(tools) if use_tools else ""
        prefill = ""
        if use_tools and options.get("tool_choice") == "required":
            prefill = required_call_prefill(tools)
        header = ""
        if self._chatml and (not messages or messages[0].role != Role.SYSTEM):
            header = render_message(ChatMessage(Role.SYSTEM, DEFAULT_SYSTEM), tools=section)
        max_tokens = options.get("max_tokens") or self.max_tokens
        reserved = min(max_tokens, self.n_ctx // 2)
        fixed = self._tokens(llm, header + generation_prompt(prefill))
        budget = self.n_ctx - reserved - fixed - _PROMPT_MARGIN
        names = call_names(messages)
        kept = self._select(messages, budget, lambda m: self._count(llm, m, section, names))
        if messages and (not kept or kept[-1] is not messages[-1]):
            newest = self._count(llm, messages[-1], section, names)
            raise ClientError(
                f"the newest message needs {newest} tokens, but only {budget} of the model's "
                f"{self.n_ctx}-token window are free after the system message, the tools and "
                f"{reserved} tokens kept for the reply; shorten it, lower max_tokens, or create "
                "the client with a larger n_ctx"
            )
        self._last_sent = tuple(kept)
        kwargs: dict[str, Any] = {"max_tokens": max_tokens, **_SAMPLING}
        for key in ("temperature", "top_p", "seed"):
            value = options.get(key)
            if value is not None:
                kwargs[key] = value
        kwargs["stop"] = [END, *(options.get("stop") or ())]
        kwargs.update(options.get("additional_properties") or {})
        response_format_to_grammar(kwargs)
        if not self._chatml:
            dicts = [d for m in kept if (d := to_llama_message(m, names)) is not None]
            return _Request(prompt=dicts, prefill="", tool_names=(), kwargs=kwargs)
        text = header + "".join(render_message(m, tools=section, names=names) for m in kept)
        text += generation_prompt(prefill)
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        room = self.n_ctx - len(prompt)  # the exact count: the reply never overruns the window
        if room < 1:
            raise ClientError(
                f"the prompt needs {len(prompt)} tokens of the {self.n_ctx}-token window; "
                "lower max_tokens or create the client with a larger n_ctx"
            )
        kwargs["max_tokens"] = min(int(max_tokens), room)
        offered = tuple(t.name for t in tools) if use_tools else ()
        return _Request(prompt=prompt, prefill=prefill, tool_names=offered, kwargs=kwargs)

    def _start(self, llm: Any, request: _Request) -> Iterator[Any]:
        """Begin generating: an iterator of chunks, one per token or a few.

        ``llm`` is typed ``Any`` here: llama-cpp-python types messages and chunks as TypedDict
        unions that plain dicts built at run time cannot satisfy statically.
        """
        if self._chatml:
            return llm.create_completion(request.prompt, stream=True, **request.kwargs)
        kwargs = {k: v for k, v in request.kwargs.items() if k != "stop" or v != [END]}
        return llm.create_chat_completion(request.prompt, stream=True, **kwargs)

    @staticmethod
    def _chunk_text(chunk: Mapping[str, Any]) -> tuple[str, str | None]:
        choices: Sequence[Mapping[str, Any]] = chunk.get("choices") or ({},)
        choice = choices[0]
        text: object = choice.get("text")
        if text is None:
            delta: Mapping[str, Any] = choice.get("delta") or {}
            text = delta.get("content")
        reason = choice.get("finish_reason")
        return (text if isinstance(text, str) else ""), (str(reason) if reason else None)

    def _run_once(
        self,
        llm: Llama,
        request: _Request,
        message_id: str,
        raw: list[str],
        emit: Callable[[object], bool],
        stop: threading.Event,
    ) -> tuple[str, list[FunctionCallContent], str | None] | None:
        """Generate one reply to ``request``: text not yet shown, calls and finish reason.

        ``None`` when the consumer stopped listening. Streamed text goes to ``emit`` as it comes;
        the generated text is appended to ``raw``.
        """
        if self._states is not None and self._chatml:
            self._states.prepare(llm, cast("list[int]", request.prompt))
        chunks = self._start(llm, request)
        parser = ReplyParser(request.prefill, request.tool_names)
        finish: str | None = None
        try:
            for chunk in chunks:
                if stop.is_set():
                    return None
                text, reason = self._chunk_text(chunk)
                finish = reason or finish
                raw.append(text)
                shown = parser.feed(text)
                if shown and not emit(shown):
                    return None
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # ends llama.cpp's generation loop at once
        rest, calls = parser.finish(fallback_id=message_id)
        return rest, calls, finish

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        message_id: str,
        emit: Callable[[object], bool],
        stop: threading.Event,
    ) -> None:
        """The worker's side of a call: load, build, generate, hand text and the end to ``emit``."""
        try:
            llm = self._load_sync()
            with GENERATION_LOCK:
                if stop.is_set():
                    return
                request = self._build(llm, messages, options)
                raw: list[str] = []
                outcome = self._run_once(llm, request, message_id, raw, emit, stop)
                if outcome is None:
                    return
                rest, calls, finish = outcome
                users = [m.text for m in messages if m.role == Role.USER]
                if request.tool_names and (
                    (not calls and looks_like_call(rest))
                    or (
                        calls
                        and options.get("tool_choice") != "required"
                        and not grounded_calls(calls, users)
                    )
                ):
                    # Call-like JSON that calls nothing offered is no answer, and a call of
                    # nothing the user said is a small model's reflex: never show or run them;
                    # answer again, without tools (nothing of it was shown yet).
                    raw.clear()
                    request = self._build(llm, messages, {**options, "tool_choice": "none"})
                    outcome = self._run_once(llm, request, message_id, raw, emit, stop)
                    if outcome is None:
                        return
                    rest, calls, finish = outcome
                calls = keep_known_arguments(calls, list(options.get("tools") or ()))
                prompt_tokens = len(request.prompt)
                if not self._chatml:  # llama-cpp-python wrote the prompt; count what we sent
                    names = call_names(self._last_sent)
                    prompt_tokens = sum(self._count(llm, m, "", names) for m in self._last_sent)
                output_tokens = self._tokens(llm, "".join(raw))
            usage = UsageDetails(
                input_token_count=prompt_tokens,
                output_token_count=output_tokens,
                total_token_count=prompt_tokens + output_tokens,
            )
            emit(
                _Final(
                    text=rest,
                    contents=tuple(calls),
                    finish_reason="tool_calls" if calls else finish,
                    usage=usage,
                )
            )
        except BaseException as exc:  # handed to the consumer, which re-raises it
            emit(exc)
        finally:
            emit(_DONE)

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        """Stream the reply token by token; tool calls arrive whole at the end, then usage.

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

        message_id = new_message_id()
        future = loop.run_in_executor(
            self._worker(), self._generate, messages, options, message_id, emit, stop
        )
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    if isinstance(item, ThreadlineError):
                        raise item
                    raise ClientError(f"llama.cpp failed: {item}") from item
                if isinstance(item, _Final):
                    contents: list[Content] = []
                    if item.text:
                        contents.append(TextContent(item.text))
                    contents += [*item.contents, UsageContent(item.usage)]
                    yield ChatResponseUpdate(
                        contents=tuple(contents),
                        role=Role.ASSISTANT,
                        message_id=message_id,
                        response_id=message_id,
                        finish_reason=item.finish_reason,
                    )
                    continue
                yield ChatResponseUpdate(
                    contents=(TextContent(cast(str, item)),),
                    role=Role.ASSISTANT,
                    message_id=message_id,
                    response_id=message_id,
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

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        """The whole reply at once (generated the same way as the stream), with its usage.

        Raises:
            ClientError: as :meth:`get_streaming_response`.
        """
        updates = [u async for u in self.get_streaming_response(messages, options=options)]
        folded, usage = messages_from_updates(updates)
        return ChatResponse(
            messages=tuple(folded),
            response_id=next((u.response_id for u in updates if u.response_id), None),
            usage=usage,
            finish_reason=updates[-1].finish_reason if updates else None,
        )
