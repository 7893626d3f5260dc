"""``Idempotency-Key`` handling: a retried request gets the first attempt's answer, not a new turn.

The official SDK retries a request after a dropped connection or a 5xx with the same headers, so a
key sent by the caller (threadline's clients send one per call) identifies every attempt. The first
attempt claims the key in storage; a retry arriving while it still runs waits for its outcome; a
retry after it finished gets the stored answer. Claims live in the database, so this also holds
when the retry reaches another server process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import ServerState
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import IdempotencyRecord

__all__ = ["claim", "idempotent"]


async def claim(
    request: Request, state: ServerState, owner: str
) -> tuple[str | None, IdempotencyRecord | None]:
    """Claim the request's ``Idempotency-Key``.

    Returns ``(key, None)`` when this request must run (and later finish or release ``key``),
    ``(None, record)`` when an earlier attempt already answered, and ``(None, None)`` without a key.
    Waits while another attempt with the same key is still running.
    """
    key = request.headers.get("idempotency-key")
    if not key:
        return None, None
    scoped = f"{request.url.path}:{key}"
    storage = state.storage
    deadline = time.monotonic() + state.config.idempotency_wait_seconds
    delay = 0.01
    while True:
        claimed = await storage.idempotency_begin(owner, scoped)
        if claimed is True:
            return scoped, None
        if isinstance(claimed, IdempotencyRecord):
            return None, claimed
        if time.monotonic() > deadline:
            raise ApiError(
                409,
                f"A request with Idempotency-Key '{key}' is still being processed; retry later.",
                code="idempotency_in_progress",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def idempotent(
    request: Request,
    state: ServerState,
    owner: str,
    work: Callable[[], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    """Run ``work`` once per ``Idempotency-Key`` (or every time without one)."""
    key, record = await claim(request, state, owner)
    if record is not None:
        return JSONResponse(record.body, status_code=record.status)
    if key is None:
        return JSONResponse(await work())
    storage = state.storage
    try:
        body = await work()
    except BaseException:
        await asyncio.shield(storage.idempotency_release(owner, key))
        raise
    await asyncio.shield(
        storage.idempotency_finish(owner, key, IdempotencyRecord(status=200, body=body))
    )
    return JSONResponse(body)
