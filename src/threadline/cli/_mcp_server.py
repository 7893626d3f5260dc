"""The MCP server of ``threadline mcp``: one user's long-term memory as tools, optionally an agent.

Tools: ``remember(fact)``, ``recall(query)``, ``forget(memory_id)`` (the library's memory tools,
with their scopes), and with an agent ``ask_<name>(message)``. None of them takes a user: whose
memory a call reaches is decided by how the caller connected, before any argument is read:

* over stdio, the user the command line named (the process serves one user);
* over HTTP, the user of the bearer key the request carried (checked by :func:`keyed_app`
  before the request reaches MCP, and looked up again by the tool from the same header).

So no argument, however crafted, reaches another user's memories: a ``memory_id`` of someone
else's is simply not found in the caller's scope.

``ask_<name>`` keeps one thread per caller and MCP session (the ``Mcp-Session-Id`` of HTTP
sessions; one for the whole stdio connection; one per key for sessionless HTTP clients), on
behalf of the caller's user, so the agent's own memory serves the same user. Threads live as long
as the server process (the newest 1,000).
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field
from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.agents.chat_agent import ChatAgent
from threadline.memory import ConversationMemory, MemoryStore, memory_tools
from threadline.threads.thread import AgentThread
from threadline.tools import FunctionTool

__all__ = ["UserOf", "bearer_key", "http_user", "keyed_app", "memory_server", "stdio_user"]

UserOf = Callable[[Context], str]
"""Whose memory a request reaches, from how it arrived (never from its arguments)."""

_MAX_THREADS = 1000


def stdio_user(user: str) -> UserOf:
    """Every request reaches ``user``'s memory: the process was started for that user."""
    return lambda ctx: user


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, if any."""
    value = headers.get("authorization", "")
    scheme, _, key = value.partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def _lookup(keys: Mapping[str, str], key: str | None) -> str | None:
    """The user of ``key``, compared in constant time."""
    if key is None:
        return None
    found: str | None = None
    for known, user in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = user
    return found


def http_user(keys: Mapping[str, str]) -> UserOf:
    """The user of the request's bearer key (the app refused requests without a valid one)."""

    def user_of(ctx: Context) -> str:
        request: Any = ctx.request_context.request
        headers: Mapping[str, str] = request.headers if request is not None else {}
        user = _lookup(keys, bearer_key(headers))
        if user is None:  # keyed_app lets none through; kept so a misuse fails closed
            raise PermissionError("no valid bearer key: this request reaches no memory")
        return user

    return user_of


def keyed_app(app: ASGIApp, keys: Mapping[str, str]) -> ASGIApp:
    """``app`` behind bearer keys: a request without a known key gets 401 and reaches nothing."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            if _lookup(keys, bearer_key(headers)) is None:
                body = b'{"error": "a valid Authorization: Bearer <key> header is required"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


class _Tools:
    """Each user's memory tools (the library's ``memory_tools``), made once per user."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.scoping = ConversationMemory(store).scoping  # the library's default scopes
        self._by_user: dict[str, dict[str, FunctionTool]] = {}

    async def run(self, user: str, name: str, arguments: dict[str, Any]) -> str:
        tools = self._by_user.get(user)
        if tools is None:
            made = memory_tools(self.store, self.scoping, user)
            tools = self._by_user[user] = {t.name: t for t in made}
        return str(await tools[name].invoke(arguments))


def memory_server(
    store: MemoryStore, user_of: UserOf, *, agent: ChatAgent | None = None
) -> MCPServer:
    """The MCP server: memory tools for the caller's user, and ``ask_<name>`` with an agent."""
    server = MCPServer(
        "threadline-memory",
        instructions="Long-term memory of one user, shared with threadline agents: remember "
        "durable facts, recall what is known, forget what the user asks to forget.",
    )
    tools = _Tools(store)

    @server.tool(structured_output=False)
    async def remember(
        fact: Annotated[
            str, Field(description='One self-contained statement, e.g. "The user is vegetarian."')
        ],
        ctx: Context,
    ) -> str:
        """Store a durable fact or preference about the user for future conversations."""
        return await tools.run(user_of(ctx), "remember", {"fact": fact})

    @server.tool(structured_output=False)
    async def recall(
        query: Annotated[str, Field(description="What to look for, in words.")], ctx: Context
    ) -> str:
        """Search what is remembered about the user and their past conversations."""
        return await tools.run(user_of(ctx), "recall", {"query": query})

    @server.tool(structured_output=False)
    async def forget(
        memory_id: Annotated[
            str, Field(description='The id of the memory to delete, as recall shows it ("mem_...")')
        ],
        ctx: Context,
    ) -> str:
        """Delete one remembered item of the user by its id."""
        return await tools.run(user_of(ctx), "forget", {"memory_id": memory_id})

    if agent is not None:
        _add_agent(server, agent, user_of)
    return server


def _add_agent(server: MCPServer, agent: ChatAgent, user_of: UserOf) -> None:
    """``ask_<name>(message)``: the agent answers, on a thread of the caller's session and user."""
    threads: OrderedDict[tuple[str, str], AgentThread] = OrderedDict()
    name = agent.name or "agent"

    def session_of(ctx: Context) -> str:
        request: Any = ctx.request_context.request
        if request is None:
            return "stdio"
        session: str | None = request.headers.get("mcp-session-id")
        return session or "http"

    async def ask(
        message: Annotated[str, Field(description="What to say to the agent.")], ctx: Context
    ) -> str:
        user = user_of(ctx)
        key = (user, session_of(ctx))
        thread = threads.get(key)
        if thread is None:
            thread = threads[key] = agent.get_new_thread(user_id=user)
            while len(threads) > _MAX_THREADS:
                threads.popitem(last=False)
        threads.move_to_end(key)
        response = await agent.run(message, thread=thread)
        return response.text

    about = f": {agent.description}" if agent.description else ""
    server.add_tool(
        ask,
        name=f"ask_{name}",
        description=f"Ask the agent {name}{about}. It remembers this conversation.",
        structured_output=False,
    )
