"""``Idempotency-Key`` handling: a retried request gets the first attempt's answer, not a new turn.

The official SDK retries a request after a dropped connection or a 5xx with the same headers, so a
key sent by the caller (threadline's clients send one per call) identifies every attempt. The first
attempt claims the key (a record claim in the thread database); a retry arriving while it still
runs waits for its outcome; a retry after it finished gets the stored answer, and a reuse of the
key with a different body is refused (422), never answered with another request's result. Claims
live in the database, so this also holds when the retry reaches another server process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import ServerState
from threadline.hosting.errors import ApiError
from threadline.threads.stores.database import RecordDatabase
from threadline.threads.stores.records import ThreadBatch, ThreadRecord

__all__ = ["KIND", "Answer", "Claim", "answered_object", "claim", "idempotent"]

KIND = "idempotency"
"""The record kind of a claimed key; its id is ``{path}:{key}``, its owner the caller's account."""

_STALE_CLAIM_SECONDS = 300.0
"""A claim older than this belongs to a request whose server died; a retry may take it over."""

_REQUEST = "_threadline_request"
_RESPONSE = "_threadline_response"


def _fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """What retries of a finished request get."""

    status: int
    body: dict[str, Any]


@dataclass(slots=True)
class Claim:
    """A claimed ``Idempotency-Key``: the request that holds it must finish or release it."""

    owner: str
    key: str
    fingerprint: str
    """A hash of the request body, stored with the answer so a reuse with another body is seen."""
    stored: bool = False
    """True once the answer went into the batch of the request's own writes (:meth:`outcome`)."""

    def record(self, body: dict[str, Any], status: int = 200) -> ThreadRecord:
        """The answer record retries of this request get."""
        answer = {"status": status, "body": {_REQUEST: self.fingerprint, _RESPONSE: body}}
        return ThreadRecord(kind=KIND, id=self.key, owner=self.owner, body=answer)

    def outcome(self, body: dict[str, Any]) -> ThreadRecord:
        """The answer, for the batch that commits the request's turn.

        A turn's messages, its response object and this record then commit together: a crash
        leaves either none of them (a retry runs the turn) or all (a retry gets this answer).
        """
        self.stored = True
        return self.record(body)

    async def finish(
        self, database: RecordDatabase, body: dict[str, Any], status: int = 200
    ) -> None:
        """Store the answer that retries of this request get."""
        answer = ThreadBatch().put(self.record(body, status))
        await asyncio.shield(database.commit(answer))

    async def release(self, database: RecordDatabase) -> None:
        """Drop the claim of a request that failed, so a retry runs it again."""
        await asyncio.shield(database.release_claim(KIND, self.key, owner=self.owner))


def answered_object(record: ThreadRecord) -> dict[str, Any]:
    """The object a stored answer replays (a response, a run ...); ``{}`` for an open claim."""
    stored: dict[str, Any] = record.body or {}
    body: dict[str, Any] = stored.get("body") or {}
    answer = body.get(_RESPONSE, body) if set(body) == {_REQUEST, _RESPONSE} else body
    return cast(dict[str, Any], answer) if isinstance(answer, dict) else {}


def _answer(record: ThreadRecord, fingerprint: str, key: str) -> Answer:
    stored: dict[str, Any] = record.body or {}
    body: dict[str, Any] = stored.get("body") or {}
    if set(body) != {_REQUEST, _RESPONSE}:
        return Answer(stored.get("status", 200), body)  # stored before fingerprints: as it is
    if body[_REQUEST] != fingerprint:
        raise ApiError(
            422,
            f"Idempotency-Key '{key}' was already used with a different request body; use a new "
            "key for a new request (a retry must repeat the first request exactly).",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return Answer(stored.get("status", 200), body[_RESPONSE])


async def claim(
    request: Request, state: ServerState, owner: str, body: dict[str, Any]
) -> tuple[Claim | None, Answer | None]:
    """Claim the request's ``Idempotency-Key``.

    Returns ``(claim, None)`` when this request must run (and later finish or release the claim),
    ``(None, answer)`` when an earlier attempt already answered, and ``(None, None)`` without a key.
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
    database = state.database
    deadline = time.monotonic() + state.config.idempotency_wait_seconds
    delay = 0.01
    while True:
        found = await database.claim_record(
            KIND, scoped, owner=owner, stale_after=_STALE_CLAIM_SECONDS
        )
        if found is None:
            return Claim(owner, scoped, fingerprint), None
        if found.body is not None:
            return None, _answer(found, fingerprint, key)
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
    held, answer = await claim(request, state, owner, body)
    if answer is not None:
        return JSONResponse(answer.body, status_code=answer.status)
    if held is None:
        return JSONResponse(await work(None))
    try:
        result = await work(held)
    except BaseException:
        await held.release(state.database)
        raise
    if not held.stored:
        await held.finish(state.database, result)
    return JSONResponse(result)
