"""``threadline serve --local`` under concurrent load, as a real subprocess on a loopback port.

The official ``openai`` client sends four chats at once to the default embedded model; the server
must answer all of them (one generation at a time inside, so none starves the others of cores).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serve_local(db: Path) -> AsyncGenerator[openai.AsyncOpenAI]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",
        "serve",
        "--local",
        "--model",
        "qwen-0.5b",  # the default, named explicitly: --model reaches the client
        "--db",
        str(db),
        "--port",
        str(port),
        "--api-key",
        "secret=me",
        "--log-level",
        "warning",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            for _ in range(600):
                try:
                    await client.models.list()
                    break
                except openai.APIConnectionError:
                    assert proc.returncode is None, "the server exited"
                    await asyncio.sleep(0.1)
            yield client
    finally:
        proc.terminate()
        await proc.wait()
        assert proc.stderr is not None
        errors = (await proc.stderr.read()).decode()
        assert "Traceback" not in errors, errors


async def test_four_concurrent_chats_are_all_answered(
    tmp_path: Path, local_model_path: Path
) -> None:
    async with serve_local(tmp_path / "local.db") as client:

        async def chat(n: int) -> tuple[str, int | None, int | None]:
            completion = await client.chat.completions.create(
                model="threadline",
                messages=[{"role": "user", "content": f"Say the number {n}."}],
                max_tokens=8,
                timeout=600,
            )
            usage = completion.usage
            return (
                completion.choices[0].message.content or "",
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
            )

        answers = await asyncio.gather(*(chat(n) for n in range(4)))
        for text, prompt_tokens, completion_tokens in answers:
            assert text.strip()
            assert prompt_tokens and completion_tokens  # the local model's usage reaches the API
        # and the server is still healthy afterwards
        again = await client.responses.create(input="Say hi.", max_output_tokens=4)
        assert again.output_text.strip()
