"""``Idempotency-Key`` handling: a retried request gets the first attempt's answer, not a new turn.

The official SDK retries a request after a dropped connection or a 5xx with the same headers, so a
key sent by the caller (threadline's clients send one per call) identifies every attempt. The first
attempt claims the key in storage; a retry arriving while it still runs waits for its outcome; a
retry after it finished gets the stored answer, and a reuse of the key with a different body is
refused (422), never answered with another request's result. Claims live in the database, so this
also holds when the retry reaches another server process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import ServerState
from threadline.hosting.errors import ApiError
from threadline.hosting.storage.base import IdempotencyRecord, ServerStorage

__all__ = ["Claim", "claim", "idempotent"]

_REQUEST = "_threadline_request"
_RESPONSE = "_threadline_response"


def _fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class Claim:
    """A claimed ``Idempotency-Key``: the request that holds it must finish or release it."""

    owner: str
    key: str
    fingerprint: str
    """A hash of the request body, stored with the answer so a reuse with another body is seen."""
    stored: bool = False
    """True once the answer went to storage with the request's own writes (:meth:`outcome`)."""

    def record(self, body: dict[str, Any], status: int = 200) -> IdempotencyRecord:
        """The stored answer retries of this request get."""
        return IdempotencyRecord(status=status, body={_REQUEST: self.fingerprint, _RESPONSE: body})

    def outcome(self, body: dict[str, Any]) -> tuple[str, str, IdempotencyRecord]:
        """``(owner, key, record)`` for a storage write that finishes the claim in its transaction.

        A turn's messages, its response object and this record then commit together: a crash
        leaves either none of them (a retry runs the turn) or all (a retry gets this answer).
        """
        self.stored = True
        return self.owner, self.key, self.record(body)

    async def finish(self, storage: ServerStorage, body: dict[str, Any], status: int = 200) -> None:
        """Store the answer that retries of this request get."""
        record = self.record(body, status)
        await asyncio.shield(storage.idempotency_finish(self.owner, self.key, record))

    async def release(self, storage: ServerStorage) -> None:
        """Drop the claim of a request that failed, so a retry runs it again."""
        await asyncio.shield(storage.idempotency_release(self.owner, self.key))


def _answer(record: IdempotencyRecord, fingerprint: str, key: str) -> IdempotencyRecord:
    body = record.body
    if set(body) != {_REQUEST, _RESPONSE}:
        return record  # stored before requests were fingerprinted: replay as it is
    if body[_REQUEST] != fingerprint:
        raise ApiError(
            422,
            f"Idempotency-Key '{key}' was already used with a different request body; use a new "
            "key for a new request (a retry must repeat the first request exactly).",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return IdempotencyRecord(status=record.status, body=body[_RESPONSE])


async def claim(
    request: Request, state: ServerState, owner: str, body: dict[str, Any]
) -> tuple[Claim | None, IdempotencyRecord | None]:
    """Claim the request's ``Idempotency-Key``.

    Returns ``(claim, None)`` when this request must run (and later finish or release the claim),
    ``(None, record)`` when an earlier attempt already answered, and ``(None, None)`` without a key.
    Waits while another attempt with the same key is still running.

    Raises:
        ApiError: 422 when the key was used before with a different ``body``; 409 when the
            first attempt is still running after the configured wait.
    """
    key = request.headers.get("idempotency-key")
    if not key:
        return None, None
    scoped = f"{request.url.path}:{key}"
    fingerprint = _fingerprint(body)
    storage = state.storage
    deadline = time.monotonic() + state.config.idempotency_wait_seconds
    delay = 0.01
    while True:
        claimed = await storage.idempotency_begin(owner, scoped)
        if claimed is True:
            return Claim(owner, scoped, fingerprint), None
        if isinstance(claimed, IdempotencyRecord):
            return None, _answer(claimed, fingerprint, key)
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
    body: dict[str, Any],
    work: Callable[[Claim | None], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    """Run ``work`` once per ``Idempotency-Key`` (or every time without one).

    ``work`` gets the claim, to store its answer in the same transaction as what it writes.
    """
    held, record = await claim(request, state, owner, body)
    if record is not None:
        return JSONResponse(record.body, status_code=record.status)
    if held is None:
        return JSONResponse(await work(None))
    try:
        answer = await work(held)
    except BaseException:
        await held.release(state.storage)
        raise
    if not held.stored:
        await held.finish(state.storage, answer)
    return JSONResponse(answer)
