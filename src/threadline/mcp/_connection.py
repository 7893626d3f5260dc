"""One live session with an MCP server, owned by a task of its own.

The SDK's transports are async context managers built on task groups, which must be left by the
task that entered them. An agent connects on first use, inside some run, and may be closed from
anywhere (another run, ``async with``, shutdown), so the session is entered and left by a
dedicated *owner task*: :meth:`Connection.open` starts it and waits until the session is ready
(or failed, or the connect timeout passed), :meth:`Connection.close` tells it to leave and waits.
Leaving runs the SDK's shutdown: stdin closed, then the child process group terminated and killed
if it lingers, so no server process outlives its connection.

The owner also watches for tool-list changes (``notifications/tools/list_changed`` on
handshake-era connections, a ``subscriptions/listen`` stream on 2026-07-28 ones) and sets
:attr:`Connection.tools_changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import mcp_types as mcp_t
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp import Client
from threadline.exceptions import ToolServerError

__all__ = ["Connection", "ConnectionLost", "open_connection"]

ClientFactory = Callable[[MessageHandlerFnT], AbstractAsyncContextManager[Client]]
"""Makes the SDK client of one connection, given the handler for the server's notifications."""


class ConnectionLost(ToolServerError):
    """The server went away (exited, closed the stream) while or before a request was sent."""


class Connection:
    """A connected ``mcp.Client`` and the task that owns it."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.client: Client | None = None
        self.tools_changed = False
        """Set when the server said its tools changed; the owner of the cache lists them again."""
        self.lost = False
        """Set once a request found the connection closed; the next use reconnects."""
        self._ready = asyncio.Event()
        self._leave = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, mcp_t.ToolListChangedNotification):
            self.tools_changed = True

    async def _own(self, factory: ClientFactory) -> None:
        try:
            async with factory(self._on_message) as client:
                self.client = client
                watcher = await self._watch_tools(client)
                self._ready.set()
                try:
                    await self._leave.wait()
                finally:
                    if watcher is not None:
                        watcher.cancel()
                        with contextlib.suppress(BaseException):
                            await watcher
        except BaseException as exc:  # reported to open(); the task itself ends quietly
            self._failure = exc
        finally:
            self.client = None
            self.lost = True
            self._ready.set()

    async def _watch_tools(self, client: Client) -> asyncio.Task[None] | None:
        """On 2026-07-28 connections, listen for tool-list changes (the notification's heir)."""
        capability = client.server_capabilities.tools
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        if not modern or capability is None or not capability.list_changed:
            return None

        async def watch() -> None:
            with contextlib.suppress(Exception):  # a lost stream is seen by the next request
                async with client.listen(tools_list_changed=True) as events:
                    async for _ in events:
                        self.tools_changed = True

        return asyncio.create_task(watch(), name=f"mcp-{self.server}-listen")

    async def close(self) -> None:
        """Leave the session and wait for the server to be stopped; safe to call twice."""
        self._leave.set()
        task = self._task
        if task is not None and not task.done():
            await asyncio.shield(task)

    async def request(self, what: str, call: Callable[[Client], Any], seconds: float) -> Any:
        """Send one request, mapping the SDK's errors to threadline's (naming server, request).

        ``seconds`` is the request's timeout, which ``call`` passes to the SDK; named in errors.
        """
        client = self.client
        if client is None or self.lost:
            self.lost = True
            raise ConnectionLost(f"MCP server {self.server!r} is not connected ({what})")
        try:
            return await call(client)
        except MCPError as exc:
            code = exc.error.code
            if code == mcp_t.CONNECTION_CLOSED:
                self.lost = True
                raise ConnectionLost(
                    f"MCP server {self.server!r} closed the connection during {what}"
                ) from exc
            if code == mcp_t.REQUEST_TIMEOUT:
                raise ToolServerError(
                    f"MCP server {self.server!r} did not answer {what} within {seconds:g} s"
                ) from exc
            raise ToolServerError(
                f"MCP server {self.server!r} refused {what}: {exc.error.message}"
            ) from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
            )
            raise ToolServerError(
                f"MCP server {self.server!r} sent a malformed answer to {what}: {problems}"
            ) from None
        except (OSError, RuntimeError, ValueError) as exc:
            # The SDK reports a broken stream, an output-schema violation or a malformed answer
            # this way; none of them leaves the connection trustworthy for this request.
            raise ToolServerError(
                f"MCP server {self.server!r} failed {what}: {type(exc).__name__}: {exc}"
            ) from exc


async def open_connection(server: str, factory: ClientFactory, *, seconds: float) -> Connection:
    """Start a connection's owner task and wait until the session is ready.

    Raises:
        ToolServerError: the server could not be started, did not complete the handshake within
            ``seconds`` (it is then stopped), or refused it.
    """
    connection = Connection(server)
    task = asyncio.create_task(connection._own(factory), name=f"mcp-{server}")
    connection._task = task
    try:
        await asyncio.wait_for(connection._ready.wait(), seconds)
    except TimeoutError:
        task.cancel()  # the SDK's shutdown is shielded and bounded: the process is stopped
        with contextlib.suppress(BaseException):
            await task
        raise ToolServerError(
            f"MCP server {server!r} did not complete the connection within {seconds:g} s; it was "
            "stopped. Check that the command starts an MCP server on stdio (or that the URL "
            "serves MCP), or raise connect_timeout"
        ) from None
    failure = connection._failure
    if failure is not None or connection.client is None:
        await connection.close()
        detail = _describe(failure)
        raise ToolServerError(f"could not connect to MCP server {server!r}: {detail}") from failure
    return connection


def _describe(given: BaseException | None) -> str:
    """The useful part of a connect failure (task groups wrap the cause in an exception group)."""
    failure: BaseException | None = given
    while isinstance(failure, BaseExceptionGroup):
        group: BaseExceptionGroup[BaseException] = failure  # pyright: ignore[reportUnknownVariableType]
        if len(group.exceptions) != 1:
            break
        failure = group.exceptions[0]
    if failure is None:
        return "the session ended before it was ready"
    if isinstance(failure, MCPError) and failure.error.code == mcp_t.CONNECTION_CLOSED:
        return "the server exited or closed the stream before the handshake completed"
    kind: str = type(failure).__name__  # pyright: ignore[reportUnknownArgumentType]
    return f"{kind}: {failure}"
