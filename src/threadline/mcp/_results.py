"""What an MCP server says, as threadline tools and tool results.

Tool results are JSON in threadline (``FunctionResultContent.result``), so an MCP result becomes:

* its ``structuredContent`` when the tool returned one (the typed result; the text beside it is
  only a serialized copy for older clients);
* else its text, when every block is text (joined by blank lines);
* else a list of blocks in MCP's own JSON shape (``{"type": "image", "mimeType": ..., "data":
  <base64>}``, ``{"type": "text", ...}``, resources), so nothing is lost and a model sees what
  kind of content it got.

A result flagged ``isError`` is raised as ``ToolServerError`` with the server's text, which the
tool loop sends back to the model as the call's error.

Schemas come from a server we do not control: a tool whose name threadline cannot offer, or whose
input schema is not a JSON object schema, is refused with an error naming the tool.
"""

from __future__ import annotations

from typing import Any

import mcp_types as mcp_t

from threadline.exceptions import ToolServerError, UsageError
from threadline.tools import check_tool_name
from threadline.types.contents import JSONValue

__all__ = ["as_result", "checked_schema", "description_of"]


def as_result(server: str, tool: str, result: mcp_t.CallToolResult) -> JSONValue:
    """The JSON result of a call, or ``ToolServerError`` when the tool reported an error."""
    texts = [b.text for b in result.content if isinstance(b, mcp_t.TextContent)]
    if result.is_error:
        detail = "\n".join(texts) or "no details given"
        raise ToolServerError(f"tool {tool!r} of MCP server {server!r} failed: {detail}")
    if result.structured_content is not None:
        structured: JSONValue = result.structured_content
        return structured
    if len(texts) == len(result.content):
        return "\n\n".join(texts)
    return [_block(b) for b in result.content]


def _block(block: Any) -> JSONValue:
    dumped: JSONValue = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def checked_schema(server: str, tool: mcp_t.Tool) -> dict[str, Any]:
    """The tool's input schema, if threadline can offer the tool; else ``ToolServerError``."""
    try:
        check_tool_name(tool.name)
    except UsageError:
        raise ToolServerError(
            f"MCP server {server!r} offers a tool named {tool.name!r}, which is not a usable tool "
            "name (1-64 letters, digits, '_' or '-'); leave it out with allowed_tools=[...]"
        ) from None
    schema = tool.input_schema  # a dict: the SDK refuses a listing where it is not one
    if schema.get("type") != "object":
        raise ToolServerError(
            f"MCP server {server!r} describes tool {tool.name!r} with an input schema that is not "
            f"a JSON object schema ({str(schema)[:80]}); a tool's arguments must be an object. "
            "Fix the server, or leave the tool out with allowed_tools=[...]"
        )
    properties: object = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ToolServerError(
            f"MCP server {server!r} describes tool {tool.name!r} with 'properties' that are not "
            f"an object ({str(properties)[:80]}); fix the server or leave the tool out"
        )
    return dict(schema)


def description_of(tool: mcp_t.Tool) -> str:
    """What the model is told the tool does: its description, else its title."""
    return tool.description or tool.title or ""
