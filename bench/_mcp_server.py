"""The MCP server the MCP bench talks to: one ``add`` tool, written with the SDK's ``MCPServer``.

``python bench/_mcp_server.py`` serves stdio; ``--http PORT`` serves streamable HTTP on loopback.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

app = MCPServer("bench")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


app.add_tool(add, structured_output=False)

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
