"""``threadline serve`` (the real command, a subprocess) serves the UI and keeps its own traces.

A turn made with the official ``openai`` client shows up in the UI's API: the thread, and the
turn's trace from the process's ``SpanBuffer`` (no ``OTEL_*`` variable set: nothing exported).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import openai

from tests.hosting._raw_http import request
from tests.ui.test_local import SRC, started


async def test_serve_mounts_the_ui_with_its_traces(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    root = str(Path(SRC).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | {
        "PYTHONPATH": os.pathsep.join([SRC, root, os.environ.get("PYTHONPATH", "")])
    }
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "threadline.cli.main", "serve", "tests.hosting._cli_agent:agent"],
        *[
            "--port",
            str(port),
            "--api-key",
            "key-alice=alice",
            "--store",
            f"sqlite:{tmp_path / 's.db'}",
        ],
        env=env,
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        await started(origin, process)
        async with openai.AsyncOpenAI(base_url=origin + "/v1", api_key="key-alice") as client:
            conversation = await client.conversations.create()
            await client.responses.create(conversation=conversation.id, input="ping")
        page = await request(origin, "GET", "/ui/")
        assert page.status == 200 and "ui.js" in page.text
        threads = (await request(origin, "GET", "/ui/api/threads")).json()["threads"]
        assert [t["id"] for t in threads] == [conversation.id]
        traces = (await request(origin, "GET", f"/ui/api/threads/{conversation.id}/traces")).json()
        assert traces["recorded"] is True
        names = {s["name"] for t in traces["traces"] for s in t["spans"]}
        assert "POST /v1/responses" in names and any(n.startswith("invoke_agent") for n in names)
    finally:
        process.terminate()
        await process.communicate()
