"""A real ``threadline serve --memory`` stopped with SIGTERM while it is still learning.

Issue 20 items 17 and 21: the preference extraction running in the background when the signal
arrives is finished (within ``--drain-seconds``) instead of dropped, or dropped with a log line
saying so; and the server's memory opens with the embedder, without the "install the memory
extra" notice when the extra is installed.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import openai

from tests.hosting.conftest import serve_process
from threadline.hosting._runner import memory_user_id
from threadline.memory import MemoryScope, open_memory_store

ROOT = Path(__file__).resolve().parents[2]
_STOPPED = (0, -signal.SIGTERM)
"""A graceful stop: uvicorn re-raises the signal once shut down, so the process ends by it."""


async def _serve(
    tmp_path: Path, *args: str, extract_seconds: float
) -> tuple[asyncio.subprocess.Process, str]:
    return await serve_process(
        "tests.hosting._cli_agent:slow_learner",
        "--store",
        f"sqlite:{tmp_path / 'server.db'}",
        "--memory",
        str(tmp_path / "memory.sqlite3"),
        *args,
        env={
            "TL_TEST_EXTRACT_SECONDS": str(extract_seconds),
            "THREADLINE_HOME": str(tmp_path / "home"),
        },
        stdout=subprocess.PIPE,
    )


async def _tell_and_stop(url: str, proc: asyncio.subprocess.Process) -> tuple[int, str, float]:
    async with openai.AsyncOpenAI(base_url=url, api_key="key-alice", max_retries=0) as client:
        answer = await client.responses.create(input="I like tea.", user="ada")
        assert answer.output_text == "noted"
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc.send_signal(signal.SIGTERM)  # the extraction of that turn is still running
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace"), loop.time() - started


async def _facts(tmp_path: Path) -> list[str]:
    store = open_memory_store(tmp_path / "memory.sqlite3")
    try:
        scope = MemoryScope(user_id=memory_user_id("alice", "ada"))
        return [r.text for r in await store.list(scope=scope, kinds=["fact", "preference"])]
    finally:
        await store.aclose()


async def test_sigterm_finishes_the_extraction_in_progress(tmp_path: Path) -> None:
    proc, url = await _serve(tmp_path, extract_seconds=2)
    code, err, _ = await _tell_and_stop(url, proc)
    assert code in _STOPPED, err
    assert await _facts(tmp_path) == ["likes tea"]
    assert "dropped" not in err
    # Item 21: the extra is installed here, so the server's memory has vectors and says nothing.
    assert "lexical only" not in err and "install the memory extra" not in err


async def test_sigterm_past_the_drain_bound_drops_and_says_so(tmp_path: Path) -> None:
    proc, url = await _serve(tmp_path, "--drain-seconds", "0.5", extract_seconds=30)
    code, err, took = await _tell_and_stop(url, proc)
    assert code in _STOPPED, err
    assert took < 20  # the bound held: it did not wait for the 30 s extraction
    assert "1 background task(s) of UserPreferencesMemory still running after 0.5s" in err
    assert await _facts(tmp_path) == []
