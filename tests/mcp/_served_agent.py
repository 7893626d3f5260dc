"""An agent with an MCP server's tools, for ``threadline serve tests.mcp._served_agent:agent``.

Its scripted model calls the demo server's ``add`` and then answers; the demo server records its
process id in ``$SERVED_PID_FILE``.
"""

from __future__ import annotations

import json
import os
import sys

from threadline import ChatAgent, FunctionCallContent, MCPStdioTool, ScriptedChatClient

from .conftest import DEMO

add = FunctionCallContent(call_id="c1", name="add", arguments=json.dumps({"a": 2, "b": 3}))
demo = MCPStdioTool(
    "demo",
    sys.executable,
    args=[DEMO],
    env={"DEMO_PID_FILE": os.environ.get("SERVED_PID_FILE", os.devnull)},
)
agent = ChatAgent(ScriptedChatClient([[add], "The sum is 5."]), name="adder", tools=[demo])
