"""``threadline serve`` as a real subprocess, driven by the official client."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest

from threadline.hosting.cli import main, parse_api_keys

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serving(*args: str, api_key: str = "secret") -> AsyncGenerator[str]:
    """Run the `threadline` command's `serve` in a subprocess; yield its URL once it answers."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",  # the `threadline` command, which hands `serve` to the server
        "serve",
        *args,
        "--port",
        str(port),
        "--api-key",
        f"{api_key}=me",
        "--log-level",
        "warning",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0) as client:
            for _ in range(300):
                try:
                    await client.models.list()
                    break
                except openai.APIConnectionError:
                    await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        await proc.wait()
        assert proc.stderr is not None
        await proc.stderr.read()


async def test_serve_subprocess(tmp_path: Path) -> None:
    async with serving("tests.hosting._cli_agent:agent", "--db", str(tmp_path / "cli.db")) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            response = await client.responses.create(input="ping")
            assert response.output_text == "pong"
        async with openai.AsyncOpenAI(base_url=url, api_key="other", max_retries=0) as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.responses.retrieve(response.id)


async def test_serve_local_answers_with_the_embedded_model(
    tmp_path: Path, local_model_path: Path
) -> None:
    async with serving("--local", "--db", str(tmp_path / "local.db")) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            first = await client.responses.create(
                input="Say hello.", max_output_tokens=8, store=True
            )
            assert first.output_text.strip()
            follow_up = await client.responses.create(
                input="Again.", previous_response_id=first.id, max_output_tokens=8
            )
            items = await client.responses.input_items.list(follow_up.id)
            texts = [
                part.text
                for item in items.data
                if item.type == "message"
                for part in item.content
                if part.type == "input_text"
            ]
            assert "Say hello." in texts and "Again." in texts


def test_bad_arguments_exit_with_a_message() -> None:
    with pytest.raises(SystemExit, match="module:attribute"):
        main(["serve", "no_colon_here"])
    with pytest.raises(SystemExit, match="cannot import"):
        main(["serve", "no_such_module_xyz:agent"])
    with pytest.raises(SystemExit, match="no attribute"):
        main(["serve", "tests.hosting._cli_agent:missing"])
    with pytest.raises(SystemExit, match="agent as module:attribute, or --local"):
        main(["serve"])


@pytest.mark.skipif(
    importlib.util.find_spec("threadline.clients.local") is not None,
    reason="the embedded model is installed, so --local would start it",
)
def test_local_without_the_embedded_model() -> None:
    with pytest.raises(SystemExit, match="embedded model"):
        main(["serve", "--local"])


def test_api_keys() -> None:
    keys = parse_api_keys(["a=alice", "b"])
    assert keys["a"] == "alice" and keys["b"].startswith("key-") and "b" not in keys["b"][4:5]
