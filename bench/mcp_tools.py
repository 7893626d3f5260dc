"""MCP tools: connecting a server and listing its tools, and what a call through MCP adds.

Run: python bench/mcp_tools.py [--calls N] [--rounds R]

(Not ``bench/mcp.py``: run as a script, that name would shadow the ``mcp`` SDK itself.)

The server (bench/_mcp_server.py, the SDK's ``MCPServer``) has one ``add`` tool; the same function
is also called directly, as a local ``FunctionTool`` (what an agent does without MCP). Figures are
medians over rounds that alternate the order of the ways compared; the spread is min-max of the
round medians. Target (issue 18): a call through MCP adds at most 2 ms over the direct call.
"caller CPU/call" is this process's CPU time per call (threadline + SDK + httpx + event loop,
not the server's): it moves far less with the machine's load than the wall time, so comparing
it with the SDK's own client's is the steadiest view of what threadline adds.
The machine may be shared: compare the ratios within one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcp import Client, StdioServerParameters
from threadline import FunctionTool, MCPStdioTool, MCPStreamableHTTPTool
from threadline.mcp import MCPTool

SERVER = str(Path(__file__).with_name("_mcp_server.py"))
TARGET_MS = 2.0


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stdio() -> MCPStdioTool:
    return MCPStdioTool("bench", sys.executable, args=[SERVER])


async def _per_call_us(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """The median wall time of a call, and this process's CPU time per call (both µs).

    The CPU time is what the calling side itself spends (threadline, the SDK, httpx, the event
    loop), without the wait for the server: it moves far less with the machine's load than the
    wall time, so it shows best what threadline adds over the SDK's own client.
    """
    for _ in range(20):
        await call()
    samples: list[float] = []
    cpu = time.process_time()
    for _ in range(calls):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples), (time.process_time() - cpu) / calls * 1e6


async def connect_and_list_ms(make: Callable[[], MCPTool], rounds: int) -> list[float]:
    times: list[float] = []
    for _ in range(rounds):
        tool = make()
        start = time.perf_counter()
        tools = await tool.get_tools()
        times.append((time.perf_counter() - start) * 1000)
        assert [t.name for t in tools] == ["add"]
        await tool.aclose()
    return times


async def call_overheads(
    url: str, calls: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-call medians and CPU times of each way, per round; the SDK's own client is the floor
    of MCP."""
    local = FunctionTool.from_function(add)
    stdio, http = _stdio(), MCPStreamableHTTPTool("bench", url)
    via_stdio = {t.name: t for t in await stdio.get_tools()}["add"]
    via_http = {t.name: t for t in await http.get_tools()}["add"]
    args = {"a": 2, "b": 3}
    async with (
        Client(StdioServerParameters(command=sys.executable, args=[SERVER])) as sdk_stdio,
        Client(url) as sdk_http,
    ):
        ways: dict[str, Callable[[], Awaitable[object]]] = {
            "direct (FunctionTool)": lambda: local.invoke(args),
            "MCP stdio": lambda: via_stdio.invoke(args),
            "  SDK client alone": lambda: sdk_stdio.call_tool("add", args),
            "MCP streamable HTTP": lambda: via_http.invoke(args),
            "  SDK client alone ": lambda: sdk_http.call_tool("add", args),
        }
        assert await via_stdio.invoke(args) == "5" and await via_http.invoke(args) == "5"
        medians: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        order = list(ways)
        for _ in range(rounds):
            for name in order:
                median, spent = await _per_call_us(ways[name], calls)
                medians[name].append(median)
                cpu[name].append(spent)
            order.reverse()  # alternate, so a warming machine favours no one
    await stdio.aclose()
    await http.aclose()
    return medians, cpu


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    port = _port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        SERVER,
        "--http",
        str(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(300):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        stdio_connect = await connect_and_list_ms(_stdio, options.rounds)
        http_connect = await connect_and_list_ms(
            lambda: MCPStreamableHTTPTool("bench", url), options.rounds
        )
        calls, cpu = await call_overheads(url, options.calls, options.rounds)
    finally:
        server.terminate()
        await server.wait()

    print("connect + list tools (ms, median [min-max] of", options.rounds, "connections)")
    for label, times in (
        ("stdio (starts the server)", stdio_connect),
        ("streamable HTTP", http_connect),
    ):
        print(f"  {label:<28} {statistics.median(times):8.1f}  [{min(times):.1f}-{max(times):.1f}]")
    direct = statistics.median(calls["direct (FunctionTool)"])
    print(f"\nper call (us, median of {options.rounds} rounds x {options.calls} calls)")
    print(
        f"  {'way':<24} {'median':>9} {'spread':>17} {'added vs direct':>16}  target"
        f"  {'caller CPU/call':>16}"
    )
    for name, values in calls.items():
        median = statistics.median(values)
        added = (median - direct) / 1000
        judged = name.startswith("MCP")
        verdict = "" if not judged else ("ok" if added <= TARGET_MS else "MISSED")
        spread = f"[{min(values):.0f}-{max(values):.0f}]"
        added_text = "" if name.startswith("direct") else f"{added:.3f} ms"
        spent = cpu[name]
        cpu_text = f"{statistics.median(spent):.0f} [{min(spent):.0f}-{max(spent):.0f}]"
        print(
            f"  {name:<24} {median:9.1f} {spread:>17} {added_text:>16}  {verdict:<6} {cpu_text:>16}"
        )
    print(f"\ntarget: a call through MCP adds <= {TARGET_MS} ms over the direct call")
    print("'SDK client alone': the official mcp.Client calling the same server, without threadline")
    print("caller CPU/call: us of this process's CPU per call, median [min-max] over rounds")


if __name__ == "__main__":
    asyncio.run(main())
