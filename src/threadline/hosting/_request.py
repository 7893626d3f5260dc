"""Reading requests: the caller's account, the JSON body within the size limit, typed fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.requests import Request

from threadline.agents.chat_agent import ChatAgent
from threadline.hosting.config import ServerConfig
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import ServerStorage

__all__ = [
    "ServerState",
    "field",
    "optional",
    "optional_list",
    "optional_object",
    "read_json",
    "state_of",
]

_T = TypeVar("_T")


@dataclass(slots=True, kw_only=True)
class ServerState:
    """What every handler needs: the hosted agent, the settings and the storage."""

    agent: ChatAgent
    config: ServerConfig
    storage: ServerStorage


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
    if declared is not None and declared.isdigit() and int(declared) > limit:
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
    return cast(dict[str, Any], body)


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
