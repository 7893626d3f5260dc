"""The server continues an incoming W3C ``traceparent``: its spans join the caller's trace.

Real server on loopback, official ``openai`` client sending the header with ``extra_headers``,
the OpenTelemetry SDK's in-memory exporter reading the spans back.
"""

from __future__ import annotations

from pathlib import Path

from tests._otel import Telemetry, attributes
from tests._otel import telemetry as telemetry
from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


async def test_the_server_continues_the_callers_trace(telemetry: Telemetry, tmp_path: Path) -> None:
    agent = ChatAgent(ScriptedChatClient(["traced answer", "streamed answer"]), name="host")
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    server, task, url = await start_server(agent, config)
    try:
        import openai

        client = openai.AsyncOpenAI(base_url=url, api_key="key-alice")
        header = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        response = await client.responses.create(
            model="threadline", input="hello", extra_headers=header
        )
        assert response.output_text == "traced answer"
        stream = await client.chat.completions.create(
            model="threadline",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
            extra_headers=header,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "streamed answer"
        await client.close()
    finally:
        server.should_exit = True
        await task

    requests = telemetry.named("POST /v1/responses") + telemetry.named("POST /v1/chat/completions")
    assert len(requests) == 2
    for request in requests:
        assert request.context is not None and request.parent is not None
        assert f"{request.context.trace_id:032x}" == TRACE_ID
        assert f"{request.parent.span_id:016x}" == PARENT_ID
        assert request.parent.is_remote
        assert attributes(request)["http.response.status_code"] == 200
    runs = telemetry.named("invoke_agent host")
    assert len(runs) == 2
    for run, request in zip(runs, requests, strict=True):
        assert run.context is not None and request.context is not None
        assert run.context.trace_id == request.context.trace_id
        # The run nests under the request (directly or through the server's own spans).
        ids = {s.context.span_id: s for s in telemetry.spans() if s.context}
        ancestor = run
        while ancestor.parent is not None and ancestor.parent.span_id in ids:
            ancestor = ids[ancestor.parent.span_id]
        assert ancestor is request
        assert [c.name for c in telemetry.children(run) if c.name == "chat"] == ["chat"]


async def test_without_traceparent_a_request_starts_a_trace(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    agent = ChatAgent(ScriptedChatClient(["ok"]), name="host")
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    server, task, url = await start_server(agent, config)
    try:
        import openai

        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            await client.responses.create(model="threadline", input="hello")
    finally:
        server.should_exit = True
        await task
    request = telemetry.one("POST /v1/responses")
    assert request.parent is None
    run = telemetry.one("invoke_agent host")
    assert run.context is not None and request.context is not None
    assert run.context.trace_id == request.context.trace_id
