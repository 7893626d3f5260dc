"""``/v1/conversations``: conversation objects whose items responses read and extend."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import (
    optional_object,
    read_json,
    state_of,
)
from threadline.hosting._turns import decode_messages, new_id, paginate, stored_items
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import ItemsChangedError, StoredObject
from threadline.openai_wire import item_id as wire_item_id
from threadline.openai_wire import items_to_messages, messages_to_items
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
    await state.storage.append(
        conversation_id,
        [m.to_dict() for m in initial],
        expected_len=0,
        objects=[
            StoredObject(
                id=conversation_id,
                owner=owner,
                kind="conversation",
                body=obj,
                container=conversation_id,
                created_at=now,
            )
        ],
    )
    return JSONResponse(obj)


async def _find(request: Request) -> tuple[Any, str, StoredObject]:
    state, owner = state_of(request)
    conversation_id = request.path_params["conversation_id"]
    found = await state.storage.get(owner, "conversation", conversation_id)
    if found is None:
        raise ApiError.not_found("conversation", conversation_id)
    return state, owner, found


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
    updated = {**found.body, "metadata": metadata}
    await state.storage.put(replace(found, body=updated))
    return JSONResponse(updated)


async def delete_conversation(request: Request) -> Response:
    """``DELETE /v1/conversations/{id}``: the conversation and its items."""
    state, owner, found = await _find(request)
    await state.storage.delete(owner, "conversation", found.id)
    return JSONResponse({"id": found.id, "object": "conversation.deleted", "deleted": True})


async def list_items(request: Request) -> Response:
    """``GET /v1/conversations/{id}/items`` (newest first unless ``order=asc``)."""
    state, _, found = await _find(request)
    stored = await state.storage.items(found.container or found.id)
    return JSONResponse(paginate(stored_items(stored), dict(request.query_params)))


async def create_items(request: Request) -> Response:
    """``POST /v1/conversations/{id}/items``: append items without running the agent."""
    state, _, found = await _find(request)
    body = await read_json(request, state.config.max_body_bytes)
    if not isinstance(body.get("items"), list):
        raise ApiError.bad("Missing required parameter: 'items' (a list).", param="items")
    added = decode_messages(items_to_messages, body["items"], "items")
    await state.storage.append(found.container or found.id, [m.to_dict() for m in added])
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
    for item in stored_items(await state.storage.items(found.container or found.id)):
        if item.get("id") == item_id:
            return JSONResponse(item)
    raise ApiError.not_found("item", item_id)


def _without_item(stored: list[dict[str, Any]], item_id: str) -> list[dict[str, Any]] | None:
    """The stored messages without the item ``item_id`` (None when no item has that id).

    An item is a message's text and media (its id is the message's), or one function call or
    result (ids derived from the call's id); a message left with no contents is dropped.
    """
    found = False
    out: list[dict[str, Any]] = []
    for data in stored:
        message = ChatMessage.from_dict(data)
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
            out.append(data)
        elif kept:
            out.append(
                ChatMessage(
                    message.role,
                    contents=kept,
                    author_name=message.author_name,
                    message_id=message.message_id,
                ).to_dict()
            )
    return out if found else None


async def delete_item(request: Request) -> Response:
    """``DELETE /v1/conversations/{id}/items/{item_id}``: answers the conversation."""
    state, _, found = await _find(request)
    item_id = request.path_params["item_id"]
    container = found.container or found.id
    stored = await state.storage.items(container)
    remaining = _without_item(stored, item_id)
    if remaining is None:
        raise ApiError.not_found("item", item_id)
    try:
        await state.storage.replace_items(container, remaining, expected_len=len(stored))
    except ItemsChangedError:
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
