"""A misbehaving MCP server over stdio, JSON-RPC written by hand (no SDK), for the fault tests.

``python raw_server.py MODE``:

* ``bad-schema``: a tool whose input schema is not an object schema;
* ``bad-name``: a tool whose name no chat API accepts;
* ``silent``: reads requests and never answers, not even the handshake;
* ``exit``: exits at once with a message on stderr.

It writes its pid to ``$DEMO_PID_FILE`` when set.
"""

from __future__ import annotations

import json
import os
import sys
import time

MODE = sys.argv[1]

TOOLS: dict[str, list[dict[str, object]]] = {
    "bad-schema": [{"name": "lookup", "inputSchema": {"type": "string"}}],
    "bad-name": [{"name": "look up/now", "inputSchema": {"type": "object", "properties": {}}}],
}


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    pid_file = os.environ.get("DEMO_PID_FILE")
    if pid_file:
        with open(pid_file, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    if MODE == "exit":
        print("fatal: no configuration found", file=sys.stderr)
        sys.exit(2)
    for line in sys.stdin:
        request = json.loads(line)
        if MODE == "silent" or "id" not in request:
            continue
        method, rid = request["method"], request["id"]
        if method == "initialize":
            result: object = {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS[MODE]}
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": method}})
            continue
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    time.sleep(0)


if __name__ == "__main__":
    main()
