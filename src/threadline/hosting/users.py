"""``POST /v1/users/forget``: erase one of the account's users whole.

A request's ``user`` names an end user of the API key's account: it narrows the memory owner
(``<account>/<percent-encoded user>``, see ``memory_user_id``), and it is recorded on every
response made with it. Forgetting that user must reach every copy of their words the server
keeps: the hosted agent's long-term memory, the responses made with that ``user``, the threads
they live on (a chain's, or the conversation's they were made in, with the conversation), and
the stored ``Idempotency-Key`` answers that would replay those responses. The caller forgets
users of its own account only, as every route sees only its account's objects.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.agents.chat_agent import ChatAgent
from threadline.hosting._idempotency import KIND as IDEMPOTENCY
from threadline.hosting._idempotency import answered_object
from threadline.hosting._json import JSONResponse
from threadline.hosting._request import ServerState, field, read_json, state_of
from threadline.hosting._runner import memory_user_id
from threadline.hosting._turns import request_user
from threadline.hosting.errors import ApiError
from threadline.memory.records import ForgetResult
from threadline.memory.store import MemoryStore
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.records import ThreadBatch

__all__ = ["forget_everything", "memory_stores", "routes"]

_ALL = 2**62
"""``list_records`` reads newest first up to a limit: this one reads every record."""


def memory_stores(agent: ChatAgent) -> list[MemoryStore]:
    """The distinct memory stores of the agent's components that hold user data."""
    stores: dict[int, MemoryStore] = {}
    for provider in agent.context_providers:
        store = getattr(provider, "store", None)
        if provider.holds_user_data and isinstance(store, MemoryStore):
            stores.setdefault(id(store), store)
    return list(stores.values())


async def _forget_stored(database: RecordDatabase, owner: str, user: str) -> dict[str, int]:
    """Delete the user's responses, their threads and conversations, and their stored answers."""
    responses = [
        r
        for r in await database.list_records("response", owner=owner, limit=_ALL)
        if (r.body or {}).get("user") == user
    ]
    response_ids = {r.id for r in responses}
    threads = {r.thread_id for r in responses if r.thread_id}
    conversations = [
        c
        for c in await database.list_records("conversation", owner=owner, limit=_ALL)
        if (c.thread_id or c.id) in threads
    ]
    answers = [
        a
        for a in await database.list_records(IDEMPOTENCY, owner=owner, limit=_ALL)
        if answered_object(a).get("object") == "response"
        and answered_object(a).get("id") in response_ids
    ]
    batch = ThreadBatch()
    for kind, records in (
        ("response", responses),
        ("conversation", conversations),
        (IDEMPOTENCY, answers),
    ):
        for record in records:
            batch.delete_record(kind, record.id, owner=owner)
    for thread_id in sorted(threads):
        batch.delete_thread(thread_id)
    if batch:
        await database.commit(batch)
    return {
        "responses": len(responses),
        "conversations": len(conversations),
        "threads": len(threads),
        "idempotency_answers": len(answers),
    }


async def forget_user(request: Request) -> Response:
    """``POST /v1/users/forget`` with ``{"user": "..."}``: that user of the caller's account."""
    state, owner = state_of(request)
    body = await read_json(request, state.config.max_body_bytes)
    user = request_user(field(body, "user", str))
    if not user.strip():
        raise ApiError.bad("Invalid 'user': it is empty; name the user to forget.", param="user")
    return JSONResponse(await forget_everything(state, owner, user))


async def forget_everything(state: ServerState, owner: str, user: str) -> dict[str, Any]:
    """Forget one user of ``owner``'s account everywhere; the ``user.forgotten`` object."""
    stored = await _forget_stored(state.database, owner, user)
    results: list[ForgetResult] = [
        await store.forget(user_id=memory_user_id(owner, user))
        for store in memory_stores(state.agent)
    ]
    memory: dict[str, Any] = {
        "records": sum(r.records for r in results),
        "purged": all(r.purged for r in results),
        "remaining": "; ".join(r.remaining for r in results if not r.purged) or None,
    }
    return {"object": "user.forgotten", "user": user, "deleted": True, **stored, "memory": memory}


def routes() -> list[Route]:
    """The user routes."""
    return [Route("/v1/users/forget", forget_user, methods=["POST"])]
