"""``MCPStdioTool`` and ``MCPStreamableHTTPTool``: an MCP server's tools as an agent's tools.

Give one to ``ChatAgent(tools=[...])`` or to a single run (``agent.run(..., tools=[...])``); it
works wherever an agent runs (group chats, handoffs, a served agent). At the start of each run the
agent asks it for its tools, which are the server's (name, description and input schema as the
server gives them), optionally narrowed by ``allowed_tools``. The guarantees:

* **Connect on first use**, or on ``async with``; ``aclose()`` ends the session and stops the
  server process (the SDK's shutdown: stdin closed, then the process group terminated and killed
  if it lingers). A closed tool connects again if used again.
* **A server that dies is reconnected once per call**: a call that finds the connection closed
  starts the server again and is sent once more; if that fails too, the call fails. A call the
  server died *during* may therefore run twice: make tools with side effects idempotent.
* **A call has a timeout** (``request_timeout``); connecting has its own (``connect_timeout``),
  after which a server that never answers is stopped.
* **Failures reach the model, not the run**: a call that fails, times out or reports an error
  raises ``ToolServerError``, which the tool loop sends back as the call's error; the run goes
  on. Failing to connect or to list the tools raises ``ToolServerError`` from the run itself,
  before any model call.
* **``notifications/tools/list_changed``** (or, on 2026-07-28 connections, a tools-changed event
  of ``subscriptions/listen``) makes the next run list the tools again.
* **Results** are JSON: structured content, text, or MCP's content blocks (images included); see
  :mod:`threadline.mcp._results`.

A tool belongs to the event loop that first connected it (as the SDK's sessions do).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, cast

import httpx2
import mcp_types as mcp_t
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp import Client, StdioServerParameters
from threadline.exceptions import ToolServerError, UsageError
from threadline.mcp._connection import Connection, ConnectionLost, open_connection
from threadline.mcp._results import as_result, checked_schema, description_of
from threadline.tools import ApprovalMode, FunctionTool, check_approval_mode
from threadline.types.contents import JSONValue

__all__ = ["MCPStdioTool", "MCPStreamableHTTPTool", "MCPTool"]

_MAX_PAGES = 100
"""tools/list pages read at most: a server whose cursor never ends cannot hang a run."""


class MCPTool:
    """The tools of one MCP server, as a tool source (base of the stdio and HTTP kinds).

    Args:
        name: names the server in errors and logs (not a tool name).
        allowed_tools: offer only these of the server's tools; all by default. Naming a tool the
            server does not offer is an error, so a typo does not silently drop a tool.
        request_timeout: seconds a call (or listing the tools) may take.
        connect_timeout: seconds starting the server and the handshake may take.
        approval_mode: which calls wait for a person's approval (see ``FunctionTool``): one mode
            for every tool of the server, or a mode per tool name
            (``{"send_email": "always_require"}``; tools not named never wait). Naming a tool the
            server does not offer is an error, like ``allowed_tools``.
    """

    def __init__(
        self,
        name: str,
        *,
        allowed_tools: Sequence[str] | None = None,
        request_timeout: float = 60.0,
        connect_timeout: float = 30.0,
        approval_mode: ApprovalMode | Mapping[str, ApprovalMode] = "never_require",
    ) -> None:
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"an MCP tool needs a name (it names the server), got {name!r}")
        if isinstance(allowed_tools, str):
            raise UsageError(
                f"allowed_tools must be a list of names, got the string {allowed_tools!r}"
            )
        for label, value in (
            ("request_timeout", request_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if not isinstance(value, int | float) or value <= 0:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        self._name = name
        if isinstance(approval_mode, Mapping):
            modes = cast(Mapping[str, ApprovalMode], approval_mode)
            for tool_name, mode in modes.items():
                check_approval_mode(mode, f"tool {tool_name!r} of MCP server {name!r}")
            self.approval_mode: ApprovalMode | Mapping[str, ApprovalMode] = dict(modes)
        else:
            self.approval_mode = check_approval_mode(approval_mode, f"MCP server {name!r}")
        self.allowed_tools = tuple(allowed_tools) if allowed_tools is not None else None
        self.request_timeout = float(request_timeout)
        self.connect_timeout = float(connect_timeout)
        self._connection: Connection | None = None
        self._tools: list[FunctionTool] | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        """Names the server in errors."""
        return self._name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r})"

    # -- connection ---------------------------------------------------------------------------

    def _client(self, on_message: MessageHandlerFnT) -> AbstractAsyncContextManager[Client]:
        raise NotImplementedError

    def _log_tail(self) -> str:
        """The end of what the server wrote to stderr, for errors (stdio only)."""
        return ""

    def _release(self) -> None:
        """Let go of what the last connection left behind (the stdio server's stderr file)."""

    async def _connected(self) -> Connection:
        """The live connection, (re)connecting if there is none or it was lost."""
        connection = self._connection
        if connection is not None and not connection.lost:
            return connection  # the common case, without waiting for the lock
        async with self._lock:
            connection = self._connection
            if connection is not None and not connection.lost:
                return connection
            if connection is not None:
                await connection.close()
                self._connection = None
            try:
                connection = await open_connection(
                    self._name, self._client, seconds=self.connect_timeout
                )
            except ToolServerError as exc:
                raise ToolServerError(f"{exc}{self._log_tail()}") from exc.__cause__
            self._connection = connection
            self._tools = None  # another process: list again
            return connection

    async def connect(self) -> None:
        """Connect now (and list the tools) instead of on first use; errors show at once."""
        await self.get_tools()

    async def aclose(self) -> None:
        """End the session and stop the server; the next use connects again."""
        async with self._lock:
            connection, self._connection = self._connection, None
            self._tools = None
            if connection is not None:
                await connection.close()
            self._release()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- tools --------------------------------------------------------------------------------

    async def get_tools(self) -> list[FunctionTool]:
        """The server's tools (those allowed), listed again when the server said they changed."""
        for attempt in (1, 2):
            connection = await self._connected()
            if self._tools is not None and not connection.tools_changed:
                return self._tools
            connection.tools_changed = False
            try:
                listed = await self._list(connection)
            except ConnectionLost:
                if attempt == 2:
                    raise
                continue
            self._tools = self._offer(listed)
            return self._tools
        raise AssertionError("unreachable")

    async def _list(self, connection: Connection) -> list[mcp_t.Tool]:
        listed: list[mcp_t.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page: mcp_t.ListToolsResult = await connection.request(
                "tools/list",
                lambda c, cursor=cursor: c.list_tools(cursor=cursor, cache_mode="refresh"),
                self.request_timeout,
            )
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return listed
        raise ToolServerError(
            f"MCP server {self._name!r} listed tools over more than {_MAX_PAGES} pages"
        )

    def _offer(self, listed: Sequence[mcp_t.Tool]) -> list[FunctionTool]:
        allowed = self.allowed_tools
        if allowed is not None:
            missing = sorted(set(allowed) - {t.name for t in listed})
            if missing:
                offered = ", ".join(sorted(t.name for t in listed)) or "none"
                raise ToolServerError(
                    f"allowed_tools names {missing}, which MCP server {self._name!r} does not "
                    f"offer (it offers: {offered})"
                )
            listed = [t for t in listed if t.name in allowed]
        modes = self.approval_mode
        if isinstance(modes, Mapping):
            named = cast(Mapping[str, ApprovalMode], modes)
            unknown = sorted(set(named) - {t.name for t in listed})
            if unknown:
                offered = ", ".join(sorted(t.name for t in listed)) or "none"
                raise ToolServerError(
                    f"approval_mode names {unknown}, which MCP server {self._name!r} does not "
                    f"offer here (it offers: {offered}); an approval that silently never applied "
                    "would let calls run unchecked"
                )
        return [self._function_tool(t) for t in listed]

    def _approval_mode(self, tool: str) -> ApprovalMode:
        mode = self.approval_mode
        if isinstance(mode, Mapping):
            return cast(Mapping[str, ApprovalMode], mode).get(tool, "never_require")
        return mode

    def _function_tool(self, tool: mcp_t.Tool) -> FunctionTool:
        schema = checked_schema(self._name, tool)
        name = tool.name

        async def call(**arguments: Any) -> JSONValue:
            return await self.call(name, arguments)

        return FunctionTool(
            name=name,
            description=description_of(tool),
            parameters=schema,
            func=call,
            approval_mode=self._approval_mode(name),
        )

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> JSONValue:
        """Call one of the server's tools directly; returns its result as the model would get it.

        Raises:
            ToolServerError: the call failed, timed out, reported an error, or the server was
                gone and could not be restarted (or died again).
        """
        args = dict(arguments or {})
        for attempt in (1, 2):
            connection = await self._connected()
            try:
                result: mcp_t.CallToolResult = await connection.request(
                    f"the call of tool {tool!r}",
                    lambda c: c.call_tool(tool, args, read_timeout_seconds=self.request_timeout),
                    self.request_timeout,
                )
            except ConnectionLost as exc:
                if attempt == 1:
                    continue  # reconnect once and send it again
                raise ConnectionLost(
                    f"{exc}, again after a restart; the call was not completed{self._log_tail()}"
                ) from exc
            return as_result(self._name, tool, result)
        raise AssertionError("unreachable")


class MCPStdioTool(MCPTool):
    """The tools of an MCP server started as a child process, spoken to over its stdin/stdout.

    Args:
        name: names the server in errors.
        command: the program to run, e.g. ``"uvx"``, ``sys.executable`` or ``"mcp-server-time"``.
        args: its arguments.
        env: extra environment variables. The server gets a minimal environment (``PATH``,
            ``HOME``, ``USER``, ...) plus these, as the MCP SDK does: secrets of this process are
            not passed on unless named here.
        cwd: its working directory.

    The rest as :class:`MCPTool`. What the server writes to stderr is kept in a temporary file
    and its end is shown in connection errors.
    """

    def __init__(
        self,
        name: str,
        command: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        allowed_tools: Sequence[str] | None = None,
        request_timeout: float = 60.0,
        connect_timeout: float = 30.0,
        approval_mode: ApprovalMode | Mapping[str, ApprovalMode] = "never_require",
    ) -> None:
        super().__init__(
            name,
            allowed_tools=allowed_tools,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            approval_mode=approval_mode,
        )
        if isinstance(args, str):
            raise UsageError(f"args must be a list of arguments, got the string {args!r}")
        self.parameters = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )
        self._stderr: IO[str] | None = None

    def __repr__(self) -> str:
        return f"MCPStdioTool(name={self._name!r}, command={self.parameters.command!r})"

    def _log_tail(self) -> str:
        stderr = self._stderr
        if stderr is None:
            return ""
        try:
            stderr.seek(0)
            lines = [line.rstrip() for line in stderr.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return "; the server's last words: " + " | ".join(lines[-3:]) if lines else ""

    def _release(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @asynccontextmanager
    async def _stdio(self, on_message: MessageHandlerFnT) -> AsyncGenerator[Client]:
        # Kept until the next connection or aclose(): a failed start is explained by its end.
        self._release()
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        transport = stdio_client(self.parameters, errlog=self._stderr)
        async with Client(
            transport, message_handler=on_message, read_timeout_seconds=self.request_timeout
        ) as client:
            yield client

    def _client(self, on_message: MessageHandlerFnT) -> AbstractAsyncContextManager[Client]:
        return self._stdio(on_message)


class MCPStreamableHTTPTool(MCPTool):
    """The tools of an MCP server reached over streamable HTTP.

    Args:
        name: names the server in errors.
        url: the server's MCP endpoint, e.g. ``"http://127.0.0.1:8000/mcp"``.
        headers: sent with every request, e.g. ``{"Authorization": "Bearer ..."}``.

    The rest as :class:`MCPTool`.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        allowed_tools: Sequence[str] | None = None,
        request_timeout: float = 60.0,
        connect_timeout: float = 30.0,
        approval_mode: ApprovalMode | Mapping[str, ApprovalMode] = "never_require",
    ) -> None:
        super().__init__(
            name,
            allowed_tools=allowed_tools,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            approval_mode=approval_mode,
        )
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"url must be an http:// or https:// URL, got {url!r}")
        self.url = url
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"MCPStreamableHTTPTool(name={self._name!r}, url={self.url!r})"

    @asynccontextmanager
    async def _http(self, on_message: MessageHandlerFnT) -> AsyncGenerator[Client]:
        timeout = httpx2.Timeout(self.connect_timeout, read=max(self.request_timeout, 300.0))
        async with httpx2.AsyncClient(headers=self.headers, timeout=timeout) as http:
            transport = streamable_http_client(self.url, http_client=http)
            async with Client(
                transport, message_handler=on_message, read_timeout_seconds=self.request_timeout
            ) as client:
                yield client

    def _client(self, on_message: MessageHandlerFnT) -> AbstractAsyncContextManager[Client]:
        return self._http(on_message)
