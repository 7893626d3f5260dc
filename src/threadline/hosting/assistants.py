"""The Assistants thread API: ``/v1/assistants``, ``/v1/threads`` and their messages.

An assistant is a stored configuration (instructions, tools) over the one hosted agent. How
threads and their messages are stored is in :mod:`_threads`; runs are in :mod:`runs`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

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
from threadline.hosting._run_plan import active_run
from threadline.hosting._threads import LIST_ALL, new_thread, one_message, thread_messages_from
from threadline.hosting._turns import client_tools, new_id, paginate, sampling_number
from threadline.hosting.errors import ApiError
from threadline.openai_wire import message_object
from threadline.threads.stores.records import ThreadBatch, ThreadRecord

__all__ = ["routes"]


# -- assistants ------------------------------------------------------------------------------------


def _assistant_fields(body: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, kind in (
        ("model", str),
        ("name", str),
        ("description", str),
        ("instructions", str),
        ("metadata", dict),
    ):
        if key in body:
            out[key] = optional(body, key, kind)
    for key, highest in (("temperature", 2.0), ("top_p", 1.0)):
        if key in body:
            out[key] = sampling_number(body, key, highest)
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
    record = ThreadRecord(
        kind="assistant", id=assistant["id"], owner=owner, body=assistant, created_at=now
    )
    await state.database.commit(ThreadBatch().put(record))
    return JSONResponse(assistant)


async def _get(request: Request, kind: str, key: str) -> tuple[ServerState, str, ThreadRecord]:
    state, owner = state_of(request)
    object_id = request.path_params[key]
    found = await state.database.get_record(kind, object_id, owner=owner)
    if found is None or found.body is None:
        raise ApiError.not_found(kind, object_id)
    return state, owner, found


def _body(found: ThreadRecord) -> dict[str, Any]:
    return found.body or {}


async def get_assistant(request: Request) -> Response:
    """``GET /v1/assistants/{id}``."""
    _, _, found = await _get(request, "assistant", "assistant_id")
    return JSONResponse(_body(found))


async def update_assistant(request: Request) -> Response:
    """``POST /v1/assistants/{id}``."""
    state, _, found = await _get(request, "assistant", "assistant_id")
    body = await read_json(request, state.config.max_body_bytes)
    updated = _assistant_fields(body, _body(found))
    await state.database.commit(ThreadBatch().put(replace(found, body=updated)))
    return JSONResponse(updated)


async def delete_assistant(request: Request) -> Response:
    """``DELETE /v1/assistants/{id}``."""
    state, owner, found = await _get(request, "assistant", "assistant_id")
    await state.database.commit(ThreadBatch().delete_record("assistant", found.id, owner=owner))
    return JSONResponse({"id": found.id, "object": "assistant.deleted", "deleted": True})


async def list_assistants(request: Request) -> Response:
    """``GET /v1/assistants``."""
    state, owner = state_of(request)
    found = await state.database.list_records("assistant", owner=owner, limit=LIST_ALL)
    bodies = [_body(f) for f in reversed(found)]
    return JSONResponse(paginate(bodies, dict(request.query_params)))


# -- threads and messages --------------------------------------------------------------------------


async def create_thread(request: Request) -> Response:
    """``POST /v1/threads`` with optional initial ``messages``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    return JSONResponse((await new_thread(state, owner, body)).body)


async def get_thread(request: Request) -> Response:
    """``GET /v1/threads/{id}``."""
    _, _, found = await _get(request, "thread", "thread_id")
    return JSONResponse(_body(found))


async def update_thread(request: Request) -> Response:
    """``POST /v1/threads/{id}``: replace its metadata."""
    state, _, found = await _get(request, "thread", "thread_id")
    body = await read_json(request, state.config.max_body_bytes)
    updated = {**_body(found), "metadata": optional_object(body, "metadata") or {}}
    await state.database.commit(ThreadBatch().put(replace(found, body=updated)))
    return JSONResponse(updated)


async def delete_thread(request: Request) -> Response:
    """``DELETE /v1/threads/{id}``: the thread, its messages, runs and items."""
    state, owner, found = await _get(request, "thread", "thread_id")
    batch = ThreadBatch().delete_record("thread", found.id, owner=owner)
    await state.database.commit(batch.delete_thread(found.thread_id or found.id))
    return JSONResponse({"id": found.id, "object": "thread.deleted", "deleted": True})


async def create_message(request: Request) -> Response:
    """``POST /v1/threads/{id}/messages``: add a message without running the assistant."""
    state, owner, found = await _get(request, "thread", "thread_id")
    body = await read_json(request, state.config.max_body_bytes)
    message, metadata = one_message(body, "message")
    active = await active_run(state, owner, found.id)
    if active is not None:
        # As OpenAI refuses it: the message would land between the run's calls and results.
        raise ApiError.bad(
            f"Can't add messages to {found.id} while a run {active.id} is active; submit its "
            "tool outputs or cancel it first."
        )
    records = thread_messages_from(owner, found.id, [(message, metadata)])
    batch = ThreadBatch().append(found.thread_id or found.id, [message]).put(*records)
    await state.database.commit(batch)
    return JSONResponse(
        records[0].body or {}
        if records
        else message_object(message, found.id, created_at=time.time())
    )


async def list_messages(request: Request) -> Response:
    """``GET /v1/threads/{id}/messages`` (newest first unless ``order=asc``; ``run_id`` filter)."""
    state, owner, found = await _get(request, "thread", "thread_id")
    stored = await state.database.list_records(
        "message", owner=owner, parent=found.id, limit=LIST_ALL
    )
    bodies = [_body(s) for s in reversed(stored)]
    run_id = request.query_params.get("run_id")
    if run_id:
        bodies = [b for b in bodies if b.get("run_id") == run_id]
    return JSONResponse(paginate(bodies, dict(request.query_params)))


async def get_message(request: Request) -> Response:
    """``GET /v1/threads/{id}/messages/{message_id}``."""
    state, owner, found = await _get(request, "thread", "thread_id")
    message_id = request.path_params["message_id"]
    message = await state.database.get_record("message", message_id, owner=owner)
    if message is None or message.parent != found.id:
        raise ApiError.not_found("message", message_id)
    return JSONResponse(_body(message))


async def update_message(request: Request) -> Response:
    """``POST /v1/threads/{id}/messages/{message_id}``: replace its metadata (all OpenAI allows)."""
    state, owner, found = await _get(request, "thread", "thread_id")
    body = await read_json(request, state.config.max_body_bytes)
    message_id = request.path_params["message_id"]
    message = await state.database.get_record("message", message_id, owner=owner)
    if message is None or message.parent != found.id:
        raise ApiError.not_found("message", message_id)
    metadata = optional_object(body, "metadata")
    updated = _body(message) if metadata is None else {**_body(message), "metadata": metadata}
    await state.database.commit(ThreadBatch().put(replace(message, body=updated)))
    return JSONResponse(updated)


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
        Route(thread + "/messages/{message_id}", update_message, methods=["POST"]),
    ]
