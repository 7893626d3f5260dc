"""Tools from MCP servers (the ``mcp`` extra): ``MCPStdioTool`` and ``MCPStreamableHTTPTool``.

A tool source: give one to ``ChatAgent(tools=[...])`` and the server's tools become the agent's.
Built on the official ``mcp`` SDK; see :mod:`threadline.mcp.tools` for what is guaranteed.
"""

from threadline.mcp.tools import MCPStdioTool, MCPStreamableHTTPTool, MCPTool

__all__ = ["MCPStdioTool", "MCPStreamableHTTPTool", "MCPTool"]
