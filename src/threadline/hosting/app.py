"""``create_app``: the ASGI app that hosts a ``ChatAgent`` behind the OpenAI wire formats."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.agents.chat_agent import ChatAgent
from threadline.exceptions import ClientError, UsageError
from threadline.hosting import (
    assistants,
    chat_completions,
    conversations,
    models,
    responses,
    users,
)
from threadline.hosting._drain import drain_agent
from threadline.hosting._request import ServerState
from threadline.hosting._retention import pruner, run_retention
from threadline.hosting._trace_context import TraceContext
from threadline.hosting.config import ServerConfig
from threadline.hosting.errors import ApiError, error_response
from threadline.hosting.ui_source import ServerUiSource, authenticate
from threadline.threads.stores.database import RecordDatabase, ThreadDatabase
from threadline.threads.stores.opener import open_database
from threadline.ui import SpanBuffer, ui_routes

__all__ = ["create_app", "server_database"]

log = logging.getLogger("threadline.hosting")


def server_database(
    store: str | ThreadDatabase, *, schema: str = "threadline", migrate: bool = False
) -> RecordDatabase:
    """The thread database a server runs on, from a spec (see ``open_database``) or as given.

    Raises:
        UsageError: the spec is not one ``open_database`` knows, or names Redis, which keeps
            threads but cannot commit a turn with its response object in one transaction.
    """
    database = (
        open_database(store, schema=schema, migrate=migrate) if isinstance(store, str) else store
    )
    if not isinstance(database, RecordDatabase):
        raise UsageError(
            f"store {database!r}: the server writes each turn's messages and its response object "
            "in one transaction, which Redis cannot share with a record table; use sqlite:PATH or "
            "postgresql://... (Redis keeps agents' threads: RedisChatMessageStore)"
        )
    return database


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    message = (
        f"Unknown endpoint: {request.method} {request.url.path}"
        if exc.status_code in (404, 405)
        else exc.detail
    )
    return error_response(ApiError(exc.status_code, message, code=kind))


async def _server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientError):
        # The hosted agent's model failed: say so (its message is ours), without internals.
        log.warning("model failed on %s: %s", request.url.path, exc)
        return _closing(
            error_response(
                ApiError(502, f"The model failed: {exc}", type="server_error", code="model_error")
            )
        )
    # Never a stack trace on the wire: log it, answer with the OpenAI error shape.
    log.exception("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return _closing(
        error_response(
            ApiError(
                500,
                "The server had an error while processing your request.",
                type="server_error",
                code="server_error",
            )
        )
    )


def _closing(response: Response) -> Response:
    # Starlette re-raises an unhandled error after this response is sent, and the server then
    # drops the connection: say so, or a client reusing the keep-alive connection fails its next
    # request with a read error.
    response.headers["connection"] = "close"
    return response


class _EncodedSlashes:
    """Keep ``%2F`` inside a path segment from acting as a path separator.

    The ASGI server decodes the path before routing, so ``/v1/responses/a%2Finput_items`` would
    reach the ``input_items`` route of response ``a``. No id this server issues has a slash, so a
    segment holding one names no object: answer 404 for it, as for any unknown id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%2f" in raw.lower():
            segment = next(s for s in raw.split(b"/") if b"%2f" in s.lower())
            object_id = unquote(segment.decode("latin-1"), errors="replace")
            response = error_response(
                ApiError(404, f"No object found with id {object_id!r}.", code="not_found")
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    agent: ChatAgent,
    config: ServerConfig | None = None,
    *,
    store: str | ThreadDatabase | None = None,
    spans: SpanBuffer | None = None,
) -> Starlette:
    """An ASGI app serving ``agent`` through the OpenAI APIs.

    Responses, Conversations, Chat Completions, Assistants and Models. Conversations, Responses
    chains and Assistants threads are threads of the ``store`` database; the hosted agent runs on
    them, and each turn commits with its response object in one transaction.

    Args:
        agent: the agent to host. Its client must keep history locally: the agent reads each
            conversation from its thread.
        config: keys, storage location and limits; defaults suit local development.
        store: a database (or a spec for ``open_database``) to use instead of the one ``config``
            names; closed with the app.
        spans: the process's recent traces (``SpanBuffer.install()``), drawn by the web UI's
            trace pages; ``None``: the UI says traces are not recorded.

    Raises:
        UsageError: the agent's client keeps history in its own service, or the store cannot
            serve (Redis, an unknown spec).
    """
    if agent.chat_client.stores_history:
        raise UsageError(
            f"the hosted agent's client {type(agent.chat_client).__name__} keeps history in its "
            "own "
            "service; host an agent whose client keeps history locally (the server stores it)"
        )
    config = config or ServerConfig()
    database = server_database(
        store if store is not None else config.store_spec(), schema=config.postgres_schema
    )
    state = ServerState(agent=agent, config=config, database=database)

    prunable = pruner(database, config.retention)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        await database.open()  # a database the server cannot use stops it here, not per request
        retention = (
            None
            if prunable is None or config.retention is None
            else asyncio.create_task(run_retention(prunable, config.retention))
        )
        try:
            yield
        finally:
            try:
                if retention is not None:
                    retention.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await retention
                # Requests are done; what the agent still learns in the background is not.
                await drain_agent(agent, config.drain_seconds)
            finally:
                await database.aclose()

    route_list: list[BaseRoute] = [
        *responses.routes(),
        *conversations.routes(),
        *chat_completions.routes(),
        *assistants.routes(),
        *models.routes(),
        *users.routes(),
    ]
    if config.ui:
        # The web UI under /ui/: the same keys, each seeing only its account's objects.
        route_list.append(ui_routes(ServerUiSource(state), authenticate, spans=spans))
    app = Starlette(
        routes=route_list,
        lifespan=lifespan,
        middleware=[Middleware(TraceContext), Middleware(_EncodedSlashes)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.threadline = state
    return app
