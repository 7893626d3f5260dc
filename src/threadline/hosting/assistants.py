"""The Assistants thread API: ``/v1/assistants``, ``/v1/threads`` and their messages.

An assistant is a stored configuration (instructions, tools) over the one hosted agent. A thread
is an item container like a conversation; its user-visible messages are also stored as
``thread.message`` objects (with the run and assistant that produced them), while tool calls and
results live only in its items, where the agent sees them. Runs are in :mod:`runs`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.hosting import runs
from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    ServerState,
    optional,
    optional_object,
    read_json,
    state_of,
)
from threadline.hosting._turns import client_tools, decode_messages, new_id, paginate
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import StoredObject
from threadline.types.contents import DataContent, TextContent, UriContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["message_object", "new_thread", "routes", "thread_messages_from", "user_messages"]

_LIST_ALL = 10_000


# -- assistants ------------------------------------------------------------------------------------


def _assistant_fields(body: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, kind in (
        ("model", str),
        ("name", str),
        ("description", str),
        ("instructions", str),
        ("metadata", dict),
        ("temperature", (int, float)),
        ("top_p", (int, float)),
    ):
        if key in body:
            out[key] = optional(body, key, kind)
    if "tools" in body:
        client_tools(body, nested=True)  # validates
        out["tools"] = body["tools"] or []
    return out


async def create_assistant(request: Request) -> Response:
    """``POST /v1/assistants``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    now = time.time()
    assistant = _assistant_fields(
        body,
        {
            "id": new_id("asst"),
            "object": "assistant",
            "created_at": int(now),
            "name": None,
            "description": None,
            "model": state.config.model_name,
            "instructions": None,
            "tools": [],
            "metadata": {},
            "temperature": None,
            "top_p": None,
            "response_format": "auto",
            "tool_resources": {},
        },
    )
    assistant["model"] = assistant["model"] or state.config.model_name
    await state.storage.put(
        StoredObject(
            id=assistant["id"], owner=owner, kind="assistant", body=assistant, created_at=now
        )
    )
    return JSONResponse(assistant)


async def _get(request: Request, kind: str, key: str) -> tuple[ServerState, str, StoredObject]:
    state, owner = state_of(request)
    object_id = request.path_params[key]
    found = await state.storage.get(owner, kind, object_id)
    if found is None:
        raise ApiError.not_found(kind, object_id)
    return state, owner, found


async def get_assistant(request: Request) -> Response:
    """``GET /v1/assistants/{id}``."""
    _, _, found = await _get(request, "assistant", "assistant_id")
    return JSONResponse(found.body)


async def update_assistant(request: Request) -> Response:
    """``POST /v1/assistants/{id}``."""
    state, _, found = await _get(request, "assistant", "assistant_id")
    body = await read_json(request, state.config.max_body_bytes)
    updated = _assistant_fields(body, found.body)
    await state.storage.put(replace(found, body=updated))
    return JSONResponse(updated)


async def delete_assistant(request: Request) -> Response:
    """``DELETE /v1/assistants/{id}``."""
    state, owner, found = await _get(request, "assistant", "assistant_id")
    await state.storage.delete(owner, "assistant", found.id)
    return JSONResponse({"id": found.id, "object": "assistant.deleted", "deleted": True})


async def list_assistants(request: Request) -> Response:
    """``GET /v1/assistants``."""
    state, owner = state_of(request)
    found = await state.storage.list_objects(owner, "assistant", limit=_LIST_ALL)
    bodies = [f.body for f in reversed(found)]
    return JSONResponse(paginate(bodies, dict(request.query_params)))


# -- threads and messages --------------------------------------------------------------------------


def user_messages(raw: object, param: str) -> list[tuple[ChatMessage, dict[str, Any]]]:
    """Messages as the Assistants API takes them (``role``, ``content``, ``metadata``)."""
    if not isinstance(raw, list):
        raise ApiError.bad(f"'{param}' must be a list of messages.", param=param)
    out: list[tuple[ChatMessage, dict[str, Any]]] = []
    for i, entry in enumerate(cast(list[object], raw)):
        where = f"{param}[{i}]"
        if not isinstance(entry, dict):
            raise ApiError.bad(f"'{where}' must be an object.", param=where)
        item = cast(dict[str, Any], entry)
        out.append(_one_message(item, where))
    return out


def _one_message(item: dict[str, Any], where: str) -> tuple[ChatMessage, dict[str, Any]]:
    role = item.get("role")
    if role not in ("user", "assistant"):
        raise ApiError.bad(f"'{where}.role' must be 'user' or 'assistant'.", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in cast(list[Any], content):
            if isinstance(part, dict) and cast(dict[str, Any], part).get("type") == "image_url":
                parts.append(
                    {
                        "type": "input_image",
                        "image_url": cast(dict[str, Any], part).get("image_url"),
                    }
                )
            else:
                parts.append(cast(dict[str, Any], part))
        content = parts
    wire = [{"type": "message", "role": role, "content": content}]
    from threadline.clients._openai_wire import items_to_messages

    message = decode_messages(items_to_messages, wire, where)[0]
    metadata = optional_object(item, "metadata") or {}
    return message, metadata


def message_object(
    message: ChatMessage,
    thread_id: str,
    *,
    created_at: float,
    run_id: str | None = None,
    assistant_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A message as a ``thread.message`` object."""
    content: list[dict[str, Any]] = []
    for part in message.contents:
        if type(part) is TextContent:
            content.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif type(part) is DataContent or type(part) is UriContent:
            content.append({"type": "image_url", "image_url": {"url": part.uri, "detail": "auto"}})
    return {
        "id": message.message_id,
        "object": "thread.message",
        "created_at": int(created_at),
        "thread_id": thread_id,
        "role": "assistant" if message.role == Role.ASSISTANT else "user",
        "content": content,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": [],
        "metadata": metadata or {},
        "status": status,
        "incomplete_details": None,
        "completed_at": int(created_at) if status == "completed" else None,
        "incomplete_at": None,
    }


def thread_messages_from(
    owner: str,
    thread_id: str,
    messages: list[tuple[ChatMessage, dict[str, Any]]],
    *,
    run_id: str | None = None,
    assistant_id: str | None = None,
) -> list[StoredObject]:
    """Stored ``thread.message`` objects for messages that show text or images."""
    now = time.time()
    out: list[StoredObject] = []
    for i, (message, metadata) in enumerate(messages):
        if not any(type(c) in (TextContent, DataContent, UriContent) for c in message.contents):
            continue
        created = now + i * 1e-6  # distinct, ordered timestamps within one write
        body = message_object(
            message,
            thread_id,
            created_at=created,
            run_id=run_id,
            assistant_id=assistant_id,
            metadata=metadata,
        )
        out.append(
            StoredObject(
                id=message.message_id,
                owner=owner,
                kind="message",
                parent=thread_id,
                body=body,
                created_at=created,
            )
        )
    return out


async def new_thread(state: ServerState, owner: str, body: dict[str, Any]) -> StoredObject:
    """Create a thread from a ``POST /v1/threads`` body (``messages``, ``metadata``)."""
    initial = user_messages(body.get("messages") or [], "messages")
    metadata = optional_object(body, "metadata") or {}
    now = time.time()
    thread_id = new_id("thread")
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": int(now),
        "metadata": metadata,
        "tool_resources": {},
    }
    stored = StoredObject(
        id=thread_id, owner=owner, kind="thread", body=thread, container=thread_id, created_at=now
    )
    objects = [stored, *thread_messages_from(owner, thread_id, initial)]
    await state.storage.append(
        thread_id, [m.to_dict() for m, _ in initial], expected_len=0, objects=objects
    )
    return stored


async def create_thread(request: Request) -> Response:
    """``POST /v1/threads`` with optional initial ``messages``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    return JSONResponse((await new_thread(state, owner, body)).body)


async def get_thread(request: Request) -> Response:
    """``GET /v1/threads/{id}``."""
    _, _, found = await _get(request, "thread", "thread_id")
    return JSONResponse(found.body)


async def update_thread(request: Request) -> Response:
    """``POST /v1/threads/{id}``: replace its metadata."""
    state, _, found = await _get(request, "thread", "thread_id")
    body = await read_json(request, state.config.max_body_bytes)
    updated = {**found.body, "metadata": optional_object(body, "metadata") or {}}
    await state.storage.put(replace(found, body=updated))
    return JSONResponse(updated)


async def delete_thread(request: Request) -> Response:
    """``DELETE /v1/threads/{id}``: the thread, its messages, runs and items."""
    state, owner, found = await _get(request, "thread", "thread_id")
    await state.storage.delete(owner, "thread", found.id)
    return JSONResponse({"id": found.id, "object": "thread.deleted", "deleted": True})


async def create_message(request: Request) -> Response:
    """``POST /v1/threads/{id}/messages``: add a message without running the assistant."""
    state, owner, found = await _get(request, "thread", "thread_id")
    body = await read_json(request, state.config.max_body_bytes)
    message, metadata = _one_message(body, "message")
    objects = thread_messages_from(owner, found.id, [(message, metadata)])
    await state.storage.append(found.container or found.id, [message.to_dict()], objects=objects)
    return JSONResponse(
        objects[0].body if objects else message_object(message, found.id, created_at=time.time())
    )


async def list_messages(request: Request) -> Response:
    """``GET /v1/threads/{id}/messages`` (newest first unless ``order=asc``; ``run_id`` filter)."""
    state, owner, found = await _get(request, "thread", "thread_id")
    stored = await state.storage.list_objects(owner, "message", parent=found.id, limit=_LIST_ALL)
    bodies = [s.body for s in reversed(stored)]
    run_id = request.query_params.get("run_id")
    if run_id:
        bodies = [b for b in bodies if b.get("run_id") == run_id]
    return JSONResponse(paginate(bodies, dict(request.query_params)))


async def get_message(request: Request) -> Response:
    """``GET /v1/threads/{id}/messages/{message_id}``."""
    state, owner, found = await _get(request, "thread", "thread_id")
    message_id = request.path_params["message_id"]
    message = await state.storage.get(owner, "message", message_id)
    if message is None or message.parent != found.id:
        raise ApiError.not_found("message", message_id)
    return JSONResponse(message.body)


def routes() -> list[Route]:
    """The Assistants routes (runs included)."""
    thread = "/v1/threads/{thread_id}"
    return [
        # Runs first: POST /v1/threads/runs must not be taken for POST /v1/threads/{thread_id}.
        *runs.routes(),
        Route("/v1/assistants", create_assistant, methods=["POST"]),
        Route("/v1/assistants", list_assistants, methods=["GET"]),
        Route("/v1/assistants/{assistant_id}", get_assistant, methods=["GET"]),
        Route("/v1/assistants/{assistant_id}", update_assistant, methods=["POST"]),
        Route("/v1/assistants/{assistant_id}", delete_assistant, methods=["DELETE"]),
        Route("/v1/threads", create_thread, methods=["POST"]),
        Route(thread, get_thread, methods=["GET"]),
        Route(thread, update_thread, methods=["POST"]),
        Route(thread, delete_thread, methods=["DELETE"]),
        Route(thread + "/messages", create_message, methods=["POST"]),
        Route(thread + "/messages", list_messages, methods=["GET"]),
        Route(thread + "/messages/{message_id}", get_message, methods=["GET"]),
    ]
