"""``/v1/conversations``: conversation objects whose items responses read and extend.

A conversation is a thread of the server's database (its id is the thread id recorded on the
conversation record); its items are the thread's messages.
"""

from __future__ import annotations

import time
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    ServerState,
    optional_object,
    read_json,
    state_of,
)
from threadline.hosting._turns import decode_messages, new_id, paginate, stored_items
from threadline.hosting.errors import ApiError
from threadline.openai_wire import item_id as wire_item_id
from threadline.openai_wire import items_to_messages, messages_to_items
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.contents import Content, FunctionCallContent, FunctionResultContent
from threadline.types.messages import ChatMessage

__all__ = ["routes"]


async def create_conversation(request: Request) -> Response:
    """``POST /v1/conversations`` with optional initial ``items`` and ``metadata``."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    metadata = optional_object(body, "metadata") or {}
    initial = decode_messages(items_to_messages, body.get("items") or [], "items")
    conversation_id = new_id("conv")
    now = time.time()
    obj = {
        "id": conversation_id,
        "object": "conversation",
        "created_at": int(now),
        "metadata": metadata,
    }
    record = ThreadRecord(
        kind="conversation",
        id=conversation_id,
        owner=owner,
        thread_id=conversation_id,
        body=obj,
        created_at=now,
    )
    batch = ThreadBatch().append(conversation_id, initial, expected_version=0).put(record)
    await state.database.commit(batch)
    return JSONResponse(obj)


async def _find(request: Request) -> tuple[ServerState, str, ThreadRecord]:
    state, owner = state_of(request)
    conversation_id = request.path_params["conversation_id"]
    found = await state.database.get_record("conversation", conversation_id, owner=owner)
    if found is None or found.body is None:
        raise ApiError.not_found("conversation", conversation_id)
    return state, owner, found


def _thread(found: ThreadRecord) -> str:
    return found.thread_id or found.id


async def _messages(state: ServerState, found: ThreadRecord) -> list[ChatMessage]:
    return await state.database.store(_thread(found)).list_messages()


async def get_conversation(request: Request) -> Response:
    """``GET /v1/conversations/{id}``."""
    _, _, found = await _find(request)
    return JSONResponse(found.body)


async def update_conversation(request: Request) -> Response:
    """``POST /v1/conversations/{id}``: replace its metadata."""
    state, _, found = await _find(request)
    body = await read_json(request, state.config.max_body_bytes)
    metadata = optional_object(body, "metadata")
    if metadata is None:
        raise ApiError.bad("Missing required parameter: 'metadata'.", param="metadata")
    updated = {**(found.body or {}), "metadata": metadata}
    await state.database.commit(ThreadBatch().put(replace(found, body=updated)))
    return JSONResponse(updated)


async def delete_conversation(request: Request) -> Response:
    """``DELETE /v1/conversations/{id}``: the conversation and its items."""
    state, owner, found = await _find(request)
    batch = ThreadBatch().delete_record("conversation", found.id, owner=owner)
    await state.database.commit(batch.delete_thread(_thread(found)))
    return JSONResponse({"id": found.id, "object": "conversation.deleted", "deleted": True})


async def list_items(request: Request) -> Response:
    """``GET /v1/conversations/{id}/items`` (newest first unless ``order=asc``)."""
    state, _, found = await _find(request)
    stored = await _messages(state, found)
    return JSONResponse(paginate(stored_items(stored), dict(request.query_params)))


async def create_items(request: Request) -> Response:
    """``POST /v1/conversations/{id}/items``: append items without running the agent."""
    state, _, found = await _find(request)
    body = await read_json(request, state.config.max_body_bytes)
    if not isinstance(body.get("items"), list):
        raise ApiError.bad("Missing required parameter: 'items' (a list).", param="items")
    added = decode_messages(items_to_messages, body["items"], "items")
    await state.database.commit(ThreadBatch().append(_thread(found), added))
    data = messages_to_items(added, output=True)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
    )


async def get_item(request: Request) -> Response:
    """``GET /v1/conversations/{id}/items/{item_id}``."""
    state, _, found = await _find(request)
    item_id = request.path_params["item_id"]
    for item in stored_items(await _messages(state, found)):
        if item.get("id") == item_id:
            return JSONResponse(item)
    raise ApiError.not_found("item", item_id)


def _without_item(stored: list[ChatMessage], item_id: str) -> list[ChatMessage] | None:
    """The stored messages without the item ``item_id`` (None when no item has that id).

    An item is a message's text and media (its id is the message's), or one function call or
    result (ids derived from the call's id); a message left with no contents is dropped.
    """
    found = False
    out: list[ChatMessage] = []
    for message in stored:
        kept: list[Content] = []
        for content in message.contents:
            if type(content) in (FunctionCallContent, FunctionResultContent):
                gone = wire_item_id(message, content) == item_id
            else:
                gone = message.message_id == item_id
            found = found or gone
            if not gone:
                kept.append(content)
        if len(kept) == len(message.contents):
            out.append(message)
        elif kept:
            out.append(message.replace(contents=kept))
    return out if found else None


async def delete_item(request: Request) -> Response:
    """``DELETE /v1/conversations/{id}/items/{item_id}``: answers the conversation."""
    state, _, found = await _find(request)
    item_id = request.path_params["item_id"]
    stored = await _messages(state, found)
    remaining = _without_item(stored, item_id)
    if remaining is None:
        raise ApiError.not_found("item", item_id)
    try:
        batch = ThreadBatch().replace(_thread(found), remaining, expected_version=len(stored))
        await state.database.commit(batch)
    except ConcurrentThreadUpdateError:
        raise ApiError(
            409,
            f"Conversation '{found.id}' changed while the item was deleted; retry the request.",
            code="conversation_changed",
        ) from None
    return JSONResponse(found.body)


def routes() -> list[Route]:
    """The Conversations routes."""
    base = "/v1/conversations/{conversation_id}"
    return [
        Route("/v1/conversations", create_conversation, methods=["POST"]),
        Route(base, get_conversation, methods=["GET"]),
        Route(base, update_conversation, methods=["POST"]),
        Route(base, delete_conversation, methods=["DELETE"]),
        Route(base + "/items", list_items, methods=["GET"]),
        Route(base + "/items", create_items, methods=["POST"]),
        Route(base + "/items/{item_id}", get_item, methods=["GET"]),
        Route(base + "/items/{item_id}", delete_item, methods=["DELETE"]),
    ]
