"""Spans exported over OTLP/HTTP to a real receiver on loopback, and read back.

The receiver is a plain HTTP server in this process that decodes each ``POST /v1/traces`` with
OpenTelemetry's own protobuf messages; the exporter is the SDK's OTLP/HTTP exporter, installed
by ``configure_tracing`` in a subprocess from ``OTEL_EXPORTER_OTLP_ENDPOINT`` alone, as a user of
``threadline serve`` or ``chat`` would set it. Needs the ``otel`` extra (part of ``test``).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
# Any: generated protobuf modules, read here as plain dicts (json_format.MessageToDict).
trace_service: Any = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
json_format: Any = pytest.importorskip("google.protobuf.json_format")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json
from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient, configure_tracing
assert configure_tracing(service_name="otlp-probe")

def lookup(city: str) -> str:
    '''The weather in a city.'''
    return "sunny"

call = FunctionCallContent(call_id="c1", name="lookup", arguments=json.dumps({"city": "Oslo"}))
agent = ChatAgent(ScriptedChatClient([[call], "It is sunny."]), name="probe", tools=[lookup])
print(asyncio.run(agent.run("Weather?", thread=agent.get_new_thread(user_id="ann"))).text)
"""


class Receiver(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    """Each export received, as the JSON form of an ``ExportTraceServiceRequest``."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            request = trace_service.ExportTraceServiceRequest()
            request.ParseFromString(body)
            Receiver.requests.append(json_format.MessageToDict(request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_spans_reach_an_otlp_receiver(receiver: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "It is sunny."
    spans: list[dict[str, Any]] = [
        span
        for request in Receiver.requests
        for resource in request["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {
        "invoke_agent probe",
        "read memory",
        "chat",
        "execute_tool lookup",
        "append memory",
    }
    run = by_name["invoke_agent probe"]
    assert {s["traceId"] for s in spans} == {run["traceId"]}
    assert by_name["execute_tool lookup"]["parentSpanId"] == run["spanId"]
    attributes = {a["key"]: a["value"] for a in run["attributes"]}
    assert attributes["user.id"] == {"stringValue": "ann"}
    assert attributes["gen_ai.agent.name"] == {"stringValue": "probe"}
    first = Receiver.requests[0]["resourceSpans"][0]
    resource = {a["key"]: a["value"] for a in first["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": "otlp-probe"}
    assert first["scopeSpans"][0]["scope"]["name"] == "threadline"
