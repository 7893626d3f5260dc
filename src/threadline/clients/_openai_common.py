"""What the OpenAI clients share: building the SDK client, options, usage and error wrapping.

Retries are the SDK's own: it retries connection errors, timeouts, 408/409/429 and 5xx with
exponential backoff and jitter (honouring ``Retry-After``), up to ``max_retries``. Each logical call
carries one ``Idempotency-Key`` header that the SDK resends on every retry (it sends none of its
own),
so a server that honours it (threadline's does) never runs a retried turn twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Self, cast

import openai

from threadline.clients.base import ChatOptions
from threadline.exceptions import ClientError, OpenAIServiceError, UsageError
from threadline.types.contents import UsageDetails

__all__ = [
    "OpenAIConnection",
    "build_client",
    "call_headers",
    "endpoint",
    "sampling_kwargs",
    "wrap_error",
]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 3


def build_client(
    *,
    client: openai.AsyncOpenAI | None,
    base_url: str | None,
    api_key: str | None,
    timeout: float | None,
    max_retries: int,
    default_headers: Mapping[str, str] | None = None,
) -> openai.AsyncOpenAI:
    """The SDK client to use: the one given, or a new one.

    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` fill in what is not passed, as in the SDK.
    """
    if client is not None:
        return client
    try:
        return openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            max_retries=max_retries,
            default_headers=default_headers,
        )
    except openai.OpenAIError as exc:
        raise UsageError(
            f"cannot create the OpenAI client: {exc}. Pass api_key=... or set OPENAI_API_KEY "
            "(any non-empty value for a threadline server started without keys)"
        ) from exc


def endpoint(client: openai.AsyncOpenAI) -> str:
    """The service's base URL, as part of ``service_name``."""
    return str(client.base_url).rstrip("/")


class OpenAIConnection:
    """What every OpenAI client holds besides its API shape: the SDK client and the service.

    The SDK client is made from ``base_url``/``api_key``/``timeout``/``max_retries`` (or taken as
    given), and ``service_name`` is ``<kind>:<base_url>``, so service-managed threads of one API
    and endpoint only ever continue there.
    """

    service_kind: ClassVar[str]
    """The API family, e.g. ``"openai-chat"``."""

    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI | None,
        base_url: str | None,
        api_key: str | None,
        timeout: float | None,
        max_retries: int,
    ) -> None:
        self._owns_client = client is None
        self.client = build_client(
            client=client,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._service = f"{self.service_kind}:{endpoint(self.client)}"

    @property
    def service_name(self) -> str:
        """``<kind>:<base_url>``: the service a thread of this client belongs to."""
        return self._service

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this client created (one passed in stays open for its owner)."""
        if self._owns_client:
            await self.client.close()


def call_headers() -> dict[str, str]:
    """Headers of one logical call: a fresh idempotency key the SDK reuses on its retries."""
    return {"Idempotency-Key": f"threadline-{uuid.uuid4()}"}


def sampling_kwargs(options: ChatOptions, *, max_tokens_key: str) -> dict[str, Any]:
    """Options every OpenAI API takes under the same names."""
    out: dict[str, Any] = {}
    for key in ("temperature", "top_p", "user"):
        value = options.get(key)
        if value is not None:
            out[key] = value
    max_tokens = options.get("max_tokens")
    if max_tokens is not None:
        out[max_tokens_key] = max_tokens
    extra = options.get("additional_properties")
    if extra:
        out["extra_body"] = dict(extra)
    return out


def usage_of(usage: Any) -> UsageDetails | None:
    """Usage from any of the APIs' usage objects (prompt/completion or input/output tokens)."""
    if usage is None:
        return None
    prompt = getattr(usage, "input_tokens", None)
    if prompt is None:
        prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "output_tokens", None)
    if completion is None:
        completion = getattr(usage, "completion_tokens", None)
    total = getattr(usage, "total_tokens", None)
    return UsageDetails(
        input_token_count=prompt, output_token_count=completion, total_token_count=total
    )


def wrap_error(exc: BaseException, service: str) -> ClientError:
    """An SDK error as a threadline ``ClientError`` carrying the service's message."""
    if isinstance(exc, openai.APIStatusError):
        body: Any = exc.body  # foreign JSON: checked field by field below
        message = exc.message
        code = None
        if isinstance(body, dict):
            error: Any = cast(dict[str, Any], body).get("error", body)
            if isinstance(error, dict):
                fields = cast(dict[str, Any], error)
                message = str(fields.get("message") or message)
                raw_code: Any = fields.get("code")
                code = raw_code if isinstance(raw_code, str) else None
        return OpenAIServiceError(
            f"{service} answered {exc.status_code}: {message}",
            status_code=exc.status_code,
            code=code,
        )
    if isinstance(exc, openai.APITimeoutError):
        return ClientError(f"{service} did not answer in time (after retries): {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return ClientError(f"cannot reach {service} (after retries): {exc}")
    if isinstance(exc, openai.APIError):
        return OpenAIServiceError(f"{service} failed: {exc.message}", status_code=None, code=None)
    return ClientError(f"{service} failed: {type(exc).__name__}: {exc}")
