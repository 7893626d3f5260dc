"""``ui_routes``: the web UI's pages, assets and JSON API, mounted under ``/ui``.

Every page is the same ``index.html``: its script reads the address (``/ui/``,
``/ui/threads/{id}``, ``/ui/memories``) and draws the page from the JSON API below
``/ui/api/``. The API key is typed once into the page and kept in ``sessionStorage``; the script
sends it as a bearer token, so it never appears in an address, a link or a server log. Missing
and foreign ids are the same 404, in the API and in the page.

The routes are a plain :class:`~starlette.routing.Mount`, not an app of their own, so a server
that mounts them keeps its own error handling and tracing middleware.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from threadline.exceptions import ThreadlineError
from threadline.ui.source import Authenticate, MemoryEntry, ThreadEntry, UiSource
from threadline.ui.spans import SpanBuffer

__all__ = ["PAGE_SIZE", "STATIC", "ui_routes"]

STATIC = Path(str(files("threadline.ui") / "static"))
"""The page, its script and its style sheet, shipped in the package."""
PAGE_SIZE = 200
"""Messages per transcript page: a 10,000-message thread loads in pages, never at once."""
_MAX_PAGE = 1000
_MAX_CHAT_BYTES = 1_000_000
_PAGE_HEADERS = {
    "cache-control": "no-store",
    # Only this server's own script, styles and API: even if text escaped into the page as
    # markup, no inline script, handler or foreign resource would run.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "status": status}}, status_code=status)


def _entry(entry: ThreadEntry) -> dict[str, Any]:
    return {
        "id": entry.thread_id,
        "title": entry.title,
        "messages": entry.messages,
        "updated_at": entry.updated_at,
        "kind": entry.kind,
        "parent_id": entry.parent_id,
    }


def _memory(entry: MemoryEntry) -> dict[str, Any]:
    return {
        "id": entry.memory_id,
        "kind": entry.kind,
        "text": entry.text,
        "thread_id": entry.thread_id,
        "recorded_at": entry.recorded_at,
        "score": entry.score,
    }


async def _ndjson(reply: AsyncIterator[str]) -> AsyncIterator[str]:
    """The reply as JSON lines: ``{"delta"}`` as it streams, then ``{"done"}`` or ``{"error"}``.

    The status line is sent before the turn runs, so a failure mid-turn is told in the stream.
    """
    try:
        async for delta in reply:
            yield json.dumps({"delta": delta}) + "\n"
    except ThreadlineError as exc:
        yield json.dumps({"error": str(exc)}) + "\n"
        return
    yield json.dumps({"done": True}) + "\n"


def _int(request: Request, name: str, default: int, *, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        return None
    return int(raw)


def ui_routes(
    source: UiSource, authenticate: Authenticate, *, spans: SpanBuffer | None = None
) -> Mount:
    """The ``/ui`` mount: pages, static assets and the JSON API over ``source``.

    Args:
        source: where threads and memories come from.
        authenticate: the caller's account from a request (its bearer key), ``None`` for a 401.
        spans: the process's recent traces, for the trace waterfall (``None``: not recorded).
    """

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def account_of(request: Request) -> str | Response:
        account = await authenticate(request)
        if account is None:
            return _error(401, "Enter an API key this server accepts.")
        return account

    async def config(request: Request) -> Response:
        return JSONResponse({"chat": source.chat_via, "traces": spans is not None})

    async def chat(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        if source.chat_via != "source":
            return _error(404, "This UI has no chat endpoint of its own.")
        thread_id = request.path_params["thread_id"]
        raw = await request.body()
        if len(raw) > _MAX_CHAT_BYTES:
            return _error(413, f"The message exceeds {_MAX_CHAT_BYTES} bytes.")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, 'Send {"text": "..."}: the body is not JSON.')
        text = cast(dict[str, object], body).get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, 'Send {"text": "..."} with the message to send.')
        reply = await source.chat(account, thread_id, text)
        if reply is None:
            return _error(404, f"No thread {thread_id!r}.")
        return StreamingResponse(_ndjson(reply), media_type="application/x-ndjson")

    async def list_threads(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        query = request.query_params.get("q", "").strip()
        found = await source.threads(account, query=query)
        return JSONResponse({"threads": [_entry(t) for t in found], "account": account})

    async def get_thread(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        thread_id = request.path_params["thread_id"]
        offset = _int(request, "offset", 0, low=0, high=2**62)
        limit = _int(request, "limit", PAGE_SIZE, low=1, high=_MAX_PAGE)
        if offset is None or limit is None:
            return _error(400, f"offset must be a whole number >= 0, limit 1 to {_MAX_PAGE}.")
        view = await source.thread(account, thread_id, offset=offset, limit=limit)
        if view is None:
            return _error(404, f"No thread {thread_id!r}.")
        return JSONResponse(
            {
                **_entry(view.entry),
                "offset": view.offset,
                "page": [m.to_dict() for m in view.messages],
                "children": [_entry(c) for c in view.children],
                "notes": list(view.notes),
                "usage": (
                    {"input_tokens": view.usage[0], "output_tokens": view.usage[1]}
                    if view.usage is not None
                    else None
                ),
            }
        )

    async def fork(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        thread_id = request.path_params["thread_id"]
        at = _int(request, "at", -1, low=0, high=2**62)
        if at is None or at < 0:
            return _error(400, "Give ?at=N: the number of messages the branch keeps.")
        made = await source.fork(account, thread_id, at=at)
        if made is None:
            return _error(404, f"No thread {thread_id!r}.")
        return JSONResponse(_entry(made), status_code=201)

    async def traces(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        thread_id = request.path_params["thread_id"]
        if await source.thread(account, thread_id, offset=0, limit=1) is None:
            return _error(404, f"No thread {thread_id!r}.")
        found = spans.traces_of(thread_id) if spans is not None else []
        return JSONResponse({"recorded": spans is not None, "traces": found})

    def user_of(request: Request) -> str | Response:
        user = request.query_params.get("user", "").strip()
        return user or _error(400, "Name the user whose memories to show: ?user=NAME.")

    async def memories(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        user = user_of(request)
        if isinstance(user, Response):
            return user
        query = request.query_params.get("q", "").strip()
        found = await source.memories(account, user, query=query)
        return JSONResponse({"user": user, "memories": [_memory(m) for m in found]})

    async def forget_memory(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        user = user_of(request)
        if isinstance(user, Response):
            return user
        memory_id = request.path_params["memory_id"]
        if not await source.forget_memory(account, user, memory_id):
            return _error(404, f"No memory {memory_id!r} of user {user!r}.")
        return JSONResponse({"id": memory_id, "deleted": True})

    async def forget_user(request: Request) -> Response:
        account = await account_of(request)
        if isinstance(account, Response):
            return account
        user = user_of(request)
        if isinstance(user, Response):
            return user
        records = await source.forget_user(account, user)
        return JSONResponse({"user": user, "deleted": True, "records": records})

    async def unknown_api(request: Request) -> Response:
        return _error(404, f"Unknown endpoint: {request.method} {request.url.path}")

    api = [
        Route("/config", config),
        Route("/threads", list_threads),
        Route("/threads/{thread_id}", get_thread),
        Route("/threads/{thread_id}/fork", fork, methods=["POST"]),
        Route("/threads/{thread_id}/traces", traces),
        Route("/threads/{thread_id}/messages", chat, methods=["POST"]),
        Route("/memories", memories),
        Route("/memories", forget_user, methods=["DELETE"]),
        Route("/memories/{memory_id}", forget_memory, methods=["DELETE"]),
        Route("/{rest:path}", unknown_api, methods=["GET", "POST", "DELETE"]),
    ]
    return Mount(
        "/ui",
        routes=[
            Route("/", page),
            Route("/threads/{thread_id}", page),
            Route("/memories", page),
            Mount("/api", routes=api),
            Mount("/static", app=StaticFiles(directory=STATIC), name="ui-static"),
            Route("/{rest:path}", page),
        ],
    )
