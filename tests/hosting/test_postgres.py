"""Two server processes' worth of apps sharing PostgreSQL storage: state started on one continues on
the other. Needs the PostgreSQL server at ``THREADLINE_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import openai
import pytest
import uvicorn

from tests.hosting.conftest import (
    KEYS,
    drop_schema,
    postgres_database,
    start_server,
    wait_serving,
)
from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig
from threadline.threads.stores.postgres_database import PostgresThreadDatabase

ROOT = Path(__file__).resolve().parents[2]
URL = os.environ.get("THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = "tl_server_test_" + os.urandom(4).hex()
    probe = await postgres_database(name)
    await probe.aclose()
    try:
        yield name
    finally:
        await drop_schema(name)


async def test_two_servers_share_conversations(schema: str) -> None:
    model_a = ScriptedChatClient(["from A", "A once"])
    model_b = ScriptedChatClient(["from B", "B again"])
    config = ServerConfig(api_keys=KEYS)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], str]] = []
    try:
        for model in (model_a, model_b):
            database = PostgresThreadDatabase(URL, schema=schema, max_connections=2)
            servers.append(await start_server(ChatAgent(model), config, store=database))
        url_a, url_b = servers[0][2], servers[1][2]
        async with (
            openai.AsyncOpenAI(base_url=url_a, api_key="key-alice") as a,
            openai.AsyncOpenAI(base_url=url_b, api_key="key-alice") as b,
            openai.AsyncOpenAI(base_url=url_b, api_key="key-bob") as bob,
        ):
            first = await a.responses.create(input="hello")
            second = await b.responses.create(input="again", previous_response_id=first.id)
            assert second.output_text == "from B"
            assert [m.text for m in model_b.calls[0].messages] == ["hello", "from A", "again"]
            with pytest.raises(openai.NotFoundError):
                await bob.responses.retrieve(first.id)
            conversation = await a.conversations.create(
                items=[{"type": "message", "role": "user", "content": "seed"}]
            )
            await b.responses.create(input="go", conversation=conversation.id)
            items = await a.conversations.items.list(conversation.id, order="asc")
            assert len(items.data) == 3
            # Same Idempotency-Key on the other server: answered from storage, no second turn.
            again = await a.responses.create(
                input="x", previous_response_id=first.id, extra_headers={"Idempotency-Key": "k1"}
            )
            replay = await b.responses.create(
                input="x", previous_response_id=first.id, extra_headers={"Idempotency-Key": "k1"}
            )
            assert replay.id == again.id and replay.output_text == "A once"
            assert len(model_b.calls) == 2
    finally:
        for uv, task, _ in servers:
            uv.should_exit = True
            await task


async def test_two_server_processes_share_state(schema: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    ports = [_free_port(), _free_port()]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "threadline.cli.main", "serve",
            "tests.hosting._cli_agent:agent", "--port", str(port), "--postgres", URL,
            "--postgres-schema", schema, "--api-key", "k=acct", "--log-level", "warning",
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]  # fmt: skip
    clients = [
        openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key="k", max_retries=0)
        for p in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_serving(proc, f"http://127.0.0.1:{port}/v1", "k")
        first = await clients[0].responses.create(input="on process one")
        second = await clients[1].responses.create(
            input="on process two", previous_response_id=first.id
        )
        items = await clients[0].responses.input_items.list(second.id, order="asc")
        texts = [cast(Any, i).content[0].text for i in items.data]
        assert texts == ["on process one", "pong", "on process two"]
    finally:
        for client in clients:
            await client.close()
        for proc in procs:
            proc.terminate()
            await proc.wait()


async def test_two_servers_started_at_once_on_a_new_schema_both_serve() -> None:
    """As an orchestrator starts replicas: both set the schema up (under its lock) and serve."""
    probe = await postgres_database("tl_probe_" + os.urandom(4).hex())  # skips without a server
    await probe.aclose()
    await drop_schema(probe.schema)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    for _ in range(3):  # the race is in the first milliseconds: a few rounds make it likely
        schema = "tl_fresh_" + os.urandom(4).hex()
        ports = [_free_port(), _free_port()]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "threadline.cli.main", "serve",
                "tests.hosting._cli_agent:agent", "--port", str(port), "--store", URL,
                "--postgres-schema", schema, "--log-level", "warning",
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            for port in ports
        ]  # fmt: skip
        try:
            for proc, port in zip(procs, ports, strict=True):
                async with openai.AsyncOpenAI(
                    base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
                ) as client:
                    for _ in range(300):
                        if proc.returncode is not None:
                            assert proc.stderr is not None
                            error = (await proc.stderr.read()).decode()
                            pytest.fail(f"a server died at start-up: {error[-2000:]}")
                        try:
                            await client.models.list()
                            break
                        except openai.APIConnectionError:
                            await asyncio.sleep(0.05)
                    reply = await client.responses.create(input="hello")
                    assert reply.output_text == "pong"
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                await proc.wait()
            await drop_schema(schema)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_faults_hold_on_postgres(schema: str) -> None:
    """Item deletion, lone surrogates and turn leaks behave on PostgreSQL as on SQLite."""
    from tests.hosting._raw_http import request as raw

    model = ScriptedChatClient(["one", "two", "three"])
    database = PostgresThreadDatabase(URL, schema=schema, max_connections=2)
    uv, task, url = await start_server(
        ChatAgent(model), ServerConfig(api_keys=KEYS), store=database
    )
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice", max_retries=0) as client:
            conversation = await client.conversations.create(
                items=[
                    {"type": "message", "role": "user", "content": "keep"},
                    {"type": "message", "role": "user", "content": "drop"},
                ]
            )
            listed = await client.conversations.items.list(conversation.id, order="asc")
            doomed = listed.data[1].id
            assert doomed is not None
            await client.conversations.items.delete(doomed, conversation_id=conversation.id)
            r1 = await client.responses.create(input="first", conversation=conversation.id)
            assert [m.text for m in model.calls[0].messages] == ["keep", "first"]
            r2 = await client.responses.create(input="second", previous_response_id=r1.id)
            assert r2.conversation is None
            assert len((await client.conversations.items.list(conversation.id)).data) == 3
            await client.conversations.delete(conversation.id)
            with pytest.raises(openai.BadRequestError, match="was deleted"):
                await client.responses.create(input="more", previous_response_id=r1.id)
        bad = await raw(
            url, "POST", "/v1/responses", content=b'{"input": "hi", "metadata": {"k": "\\udfff"}}'
        )
        assert bad.status == 400 and bad.json()["error"]["param"] == "metadata.k"
    finally:
        uv.should_exit = True
        await task
