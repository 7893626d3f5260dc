"""``configure_tracing`` and the CLI honour the standard ``OTEL_*`` variables (real subprocesses).

The console exporter stands in for a collector: it is the SDK's own exporter, writing each span as
JSON to standard output, where the test reads it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio
from threadline import ChatAgent, ScriptedChatClient, configure_tracing
print("installed:", configure_tracing(service_name="probe"), flush=True)
agent = ChatAgent(ScriptedChatClient(["hi"]), name="probe_agent")
print("answer:", asyncio.run(agent.run("hello")).text, flush=True)
"""


def _env(**otel: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env.pop("THREADLINE_HOME", None)
    return {**env, **otel}


def _run(**otel: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=_env(**otel),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_exporter_from_the_environment() -> None:
    done = _run(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="from-env")
    assert done.returncode == 0, done.stderr
    assert "installed: True" in done.stdout
    assert '"name": "invoke_agent probe_agent"' in done.stdout
    assert '"name": "chat"' in done.stdout
    assert '"service.name": "from-env"' in done.stdout  # OTEL_SERVICE_NAME wins


def test_nothing_is_configured_without_otel_variables() -> None:
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "installed: False" in done.stdout
    assert "invoke_agent" not in done.stdout


def test_sdk_disabled_wins() -> None:
    done = _run(OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    assert "installed: False" in done.stdout and "invoke_agent" not in done.stdout


def test_an_unknown_exporter_is_a_clear_error() -> None:
    done = _run(OTEL_TRACES_EXPORTER="zipkin_nope")
    assert done.returncode != 0
    assert "UsageError" in done.stderr
    assert "OTEL_TRACES_EXPORTER names 'zipkin_nope'" in done.stderr
    assert "console" in done.stderr  # names what is installed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_threadline_serve_exports_spans_as_otel_variables_say(tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",
        "serve",
        "tests.hosting._cli_agent:agent",
        "--store",
        f"sqlite:{tmp_path / 'cli.db'}",
        "--port",
        str(port),
        "--api-key",
        "secret=me",
        "--log-level",
        "warning",
        env=_env(OTEL_TRACES_EXPORTER="console"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            for _ in range(300):
                try:
                    await client.models.list()
                    break
                except openai.APIConnectionError:
                    if proc.returncode is not None:
                        break
                    await asyncio.sleep(0.1)
            response = await client.responses.create(
                input="ping", extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            )
            assert response.output_text == "pong"
    finally:
        if proc.returncode is None:
            proc.terminate()  # uvicorn stops cleanly; the SDK flushes its batch at exit
        out, err = await proc.communicate()
    text = out.decode()
    assert '"name": "invoke_agent"' in text, err.decode()[-2000:]
    assert f'"trace_id": "0x{trace_id}"' in text
    assert '"name": "POST /v1/responses"' in text


def test_no_spans_are_made_when_the_env_asks_for_none() -> None:
    done = _run(OTEL_TRACES_EXPORTER="none")
    assert "installed: False" in done.stdout


@pytest.mark.parametrize("value", ["true", "True"])
def test_content_capture_env_variable_reaches_the_spans(value: str) -> None:
    done = _run(
        OTEL_TRACES_EXPORTER="console", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=value
    )
    assert done.returncode == 0, done.stderr
    assert "gen_ai.input.messages" in done.stdout


def test_a_bad_exporter_is_one_line_from_the_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "--home", str(tmp_path), "threads", "list"],
        env=_env(OTEL_TRACES_EXPORTER="nope"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("threadline: error: OTEL_TRACES_EXPORTER names 'nope'")
    assert "Traceback" not in done.stderr


def test_an_unknown_otlp_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._otel import reset_globals
    from threadline import UsageError, configure_tracing

    reset_globals()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(UsageError, match="OTEL_EXPORTER_OTLP_PROTOCOL is 'carrier-pigeon'"):
        configure_tracing()


def test_an_application_provider_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from tests._otel import reset_globals
    from threadline import _tracing as tr
    from threadline import configure_tracing

    reset_globals()
    mine = TracerProvider()
    trace.set_tracer_provider(mine)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    try:
        assert configure_tracing(capture_content=True) is False
        assert trace.get_tracer_provider() is mine
        assert tr.capture_content()
    finally:
        tr.set_capture_content(None)
        mine.shutdown()
        reset_globals()


def test_threadline_chat_exports_spans_as_otel_variables_say(
    tmp_path: Path, local_model_path: Path
) -> None:
    """The real embedded model, a one-shot chat (stdin a pipe), spans to the console exporter."""
    done = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", "--max-tokens", "8"],
        input="Say hi.\n",
        env={**_env(OTEL_TRACES_EXPORTER="console"), "THREADLINE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "invoke_agent' in done.stdout
    assert '"gen_ai.provider.name": "llama_cpp"' in done.stdout
    assert '"name": "append sqlite"' in done.stdout
