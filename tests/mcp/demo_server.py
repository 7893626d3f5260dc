"""An MCP server written with the SDK's ``MCPServer`` (``FastMCP`` before mcp 2), for the tests.

Run as ``python demo_server.py`` (stdio) or ``python demo_server.py --http PORT`` (streamable HTTP
on 127.0.0.1). It writes its process id to ``$DEMO_PID_FILE`` when set, so a test can check that
no server outlives its connection. Its tools cover what a client must handle: plain, structured
and image results, a tool error, a crash, a hang, and a tool that adds another and says so.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
"""A 1x1 PNG."""

app = MCPServer("demo")


class Weather(BaseModel):
    city: str
    celsius: float


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool(structured_output=False)
def shout(text: str) -> str:
    """Say it louder."""
    return text.upper() + "!"


@app.tool()
def weather(city: str) -> Weather:
    """The weather in a city, as structured data."""
    return Weather(city=city, celsius=21.5)


@app.tool()
def picture() -> Image:
    """A tiny picture."""
    return Image(data=PIXEL, format="png")


@app.tool()
def fail(reason: str) -> str:
    """Always fails with the reason given."""
    raise ToolError(f"refused: {reason}")


@app.tool()
def crash() -> str:
    """The server process dies."""
    os._exit(3)


@app.tool()
async def hang() -> str:
    """Never answers."""
    await asyncio.sleep(3600)
    return "too late"


@app.tool()
def whoami() -> int:
    """The server's process id."""
    return os.getpid()


@app.tool()
async def grow(ctx: Context) -> str:
    """Adds a tool named 'double' and tells the client its tools changed."""

    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    app.add_tool(double, name="double")
    await ctx.notify_tools_changed()  # 2026-07-28 connections: subscriptions/listen
    try:
        await ctx.request_context.session.send_tool_list_changed()  # handshake-era connections
    except Exception:  # not available on this connection
        pass
    return "grown"


if __name__ == "__main__":
    pid_file = os.environ.get("DEMO_PID_FILE")
    if pid_file:
        with open(pid_file, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        import uvicorn

        http = app.streamable_http_app()
        token = os.environ.get("DEMO_TOKEN")

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            """Refuses requests without ``Authorization: Bearer $DEMO_TOKEN`` when it is set."""
            if scope["type"] == "http" and token:
                headers = dict(scope["headers"])
                if headers.get(b"authorization") != f"Bearer {token}".encode():
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await http(scope, receive, send)

        uvicorn.run(guarded, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        app.run()
