"""Reading requests: the caller's account, the JSON body within the size limit, typed fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.requests import Request

from threadline.agents.chat_agent import ChatAgent
from threadline.hosting.config import ServerConfig
from threadline.hosting.errors import ApiError
from threadline.threads.stores.database import RecordDatabase

__all__ = [
    "ServerState",
    "field",
    "is_decimal",
    "optional",
    "optional_list",
    "optional_object",
    "read_json",
    "state_of",
]

_T = TypeVar("_T")


@dataclass(slots=True, kw_only=True)
class ServerState:
    """What every handler needs: the hosted agent, the settings and the thread database.

    Conversations, Responses chains and Assistants threads are threads of ``database``; response
    objects, conversations, assistants, runs and idempotency answers are records beside them.
    """

    agent: ChatAgent
    config: ServerConfig
    database: RecordDatabase


def state_of(request: Request) -> tuple[ServerState, str]:
    """The server state and the caller's account; 401 without a valid key."""
    state = cast(ServerState, request.app.state.threadline)
    keys = state.config.api_keys
    if not keys:
        return state, "default"
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    owner = keys.get(token.strip()) if scheme.lower() == "bearer" else None
    if owner is None:
        raise ApiError(
            401,
            "Incorrect API key provided. Pass a key this server was started with as a bearer "
            "token.",
            type="invalid_request_error",
            code="invalid_api_key",
        )
    return state, owner


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 when larger than ``limit``, 400 when not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and is_decimal(declared) and int(declared) > limit:
        raise ApiError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError.bad(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError.bad("The request body must be a JSON object.")
    # A lone surrogate can only arrive as a \uD800-\uDFFF escape: look for one only then.
    if b"\\ud" in raw or b"\\uD" in raw:
        where = _lone_surrogate(cast(object, body))
        if where is not None:
            raise ApiError.bad(
                f"Invalid '{where}': the text contains a lone UTF-16 surrogate (an unpaired "
                "\\uD800-\\uDFFF escape), which is not valid Unicode; send well-formed text.",
                param=where,
            )
    return cast(dict[str, Any], body)


def is_decimal(text: str) -> bool:
    """True for a plain ASCII decimal number (``str.isdigit`` also accepts ``²`` and ``٣``)."""
    return text.isascii() and text.isdigit()


def _lone_surrogate(body: object) -> str | None:
    """The path of the first string (value or key) holding a lone surrogate, or None.

    Such text cannot be encoded as UTF-8, so storing or sending it would fail later, far from the
    field at fault. Iterative, so a deep body cannot exhaust the stack.
    """
    stack: list[tuple[str, object]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return path or "body"
        elif isinstance(value, dict):
            for key, child in cast(dict[str, object], value).items():
                child_path = f"{path}.{key}" if path else key
                if not _encodable(key):
                    return path or "body"
                stack.append((child_path, child))
        elif isinstance(value, list):
            for i, child in enumerate(cast(list[object], value)):
                stack.append((f"{path}[{i}]", child))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _type_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def optional(body: dict[str, Any], key: str, kind: type[_T] | tuple[type, ...]) -> _T | None:
    """A field that may be absent or null; 400 when present with the wrong type."""
    value = body.get(key)
    if value is None:
        return None
    bad_bool = isinstance(value, bool) and kind in (int, float, (int, float))
    if not isinstance(value, kind) or bad_bool:
        raise ApiError.bad(
            f"Invalid type for '{key}': expected {_type_name(kind)}, got {type(value).__name__}.",
            param=key,
        )
    return cast(_T, value)


def optional_object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    """An optional JSON object field."""
    return cast(dict[str, Any] | None, optional(body, key, dict))


def optional_list(body: dict[str, Any], key: str) -> list[Any] | None:
    """An optional JSON array field."""
    return cast(list[Any] | None, optional(body, key, list))


def field(body: dict[str, Any], key: str, kind: type[_T]) -> _T:
    """A required field; 400 when missing or of the wrong type."""
    value = optional(body, key, kind)
    if value is None:
        raise ApiError.bad(f"Missing required parameter: '{key}'.", param=key)
    return value
