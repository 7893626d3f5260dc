"""The server under load with bad bodies mixed in: how many requests get a 5xx (target 0).

Run: python bench/server_faults.py [--seconds S] [--concurrency C]

``threadline serve --memory`` (SQLite threads, SQLite memory with the default embedder when the
``memory`` extra is installed, a constant-answer model that also answers fact extractions) runs in
its own process; a loopback load generator sends, round-robin on C keep-alive connections, valid
turns (Responses, streamed Responses, Chat Completions) and the bodies a hostile or careless client
sends: malformed JSON, an over-long or control-character ``user``, tool results that answer no
call, and huge inputs (100,000 characters, and two messages of 2,500). Each kind has the status it
must get; the report counts 5xx, any other unexpected status, and ``error`` events in streams.
Issue 20: the adversarial probe saw 826 5xx in 50,724 requests, all from long inputs with memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "bench-key"


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of request: what it sends and the status it must get."""

    name: str
    path: str
    body: bytes
    expect: int


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def kinds(worker: int = 0) -> list[Kind]:
    """The request kinds; ``worker`` names the users, so each connection is its own users (one
    user's turns wait for that user's fact extraction, which is not what this measures)."""
    huge = "fox " * 25_000  # 100,000 characters
    half = "badger " * 360  # about 2,500 characters
    user_msgs = {"role": "user", "content": "Tell me about foxes."}
    stray_output = {"type": "function_call_output", "call_id": "call_nowhere", "output": "42"}
    return [
        Kind(
            "valid", "/v1/responses", _json({"input": "I like foxes.", "user": f"u1-{worker}"}), 200
        ),
        Kind(
            "valid stream",
            "/v1/responses",
            _json({"input": "Foxes?", "user": f"u2-{worker}", "stream": True}),
            200,
        ),
        Kind(
            "valid chat",
            "/v1/chat/completions",
            _json({"model": "m", "messages": [user_msgs], "user": f"u3-{worker}"}),
            200,
        ),
        Kind("malformed JSON", "/v1/responses", b'{"input": "foxes", "user": ', 400),
        Kind("over-long user", "/v1/responses", _json({"input": "hi", "user": "u" * 5_000}), 400),
        Kind("control user", "/v1/responses", _json({"input": "hi", "user": "a\u0000b"}), 400),
        Kind("unknown tool result", "/v1/responses", _json({"input": [stray_output]}), 400),
        Kind(
            "unknown tool message",
            "/v1/chat/completions",
            _json(
                {
                    "model": "m",
                    "messages": [
                        user_msgs,
                        {"role": "tool", "tool_call_id": "call_nowhere", "content": "42"},
                    ],
                }
            ),
            400,
        ),
        Kind("huge input", "/v1/responses", _json({"input": huge, "user": f"u4-{worker}"}), 200),
        Kind(
            "huge input stream",
            "/v1/responses",
            _json({"input": huge, "user": f"u5-{worker}", "stream": True}),
            200,
        ),
        Kind(
            "two long messages",
            "/v1/chat/completions",
            _json(
                {
                    "model": "m",
                    "user": f"u6-{worker}",
                    "messages": [
                        {"role": "user", "content": half},
                        {"role": "assistant", "content": "Go on."},
                        {"role": "user", "content": half},
                    ],
                }
            ),
            200,
        ),
    ]


@dataclass
class Tally:
    sent: Counter[str]
    statuses: Counter[tuple[str, int]]
    unexpected: Counter[str]
    error_events: int = 0
    five_xx: int = 0
    failures: int = 0  # connection failures (the server dropped a connection without answering)


async def _read(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if size == 0:
                break
    return status, headers, body


async def _worker(port: int, offset: int, deadline: float, tally: Tally) -> None:
    all_kinds = kinds(offset)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            kind = all_kinds[i % len(all_kinds)]
            i += 1
            request = (
                f"POST {kind.path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(kind.body)}\r\n\r\n"
            ).encode() + kind.body
            tally.sent[kind.name] += 1
            try:
                writer.write(request)
                status, headers, body = await _read(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                tally.failures += 1
                status, headers, body = 0, {"connection": "close"}, b""
            tally.statuses[(kind.name, status)] += 1
            if status >= 500:
                tally.five_xx += 1
            if status != kind.expect:
                tally.unexpected[kind.name] += 1
            if b'"type":"error"' in body or b'"type": "error"' in body:
                tally.error_events += 1
            if headers.get("connection") == "close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def load(port: int, concurrency: int, seconds: float) -> tuple[Tally, float]:
    tally = Tally(Counter(), Counter(), Counter())
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_worker(port, n, deadline, tally) for n in range(concurrency)))
    return tally, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the benchmark server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to load it")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]
            ),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_faults_server.py"),
                str(port),
                str(Path(tmp) / "bench.db"),
                str(Path(tmp) / "memory.sqlite3"),
            ],
            env=env,
        )
        try:
            wait_for(port)
            tally, elapsed = asyncio.run(load(port, args.concurrency, args.seconds))
        finally:
            server.terminate()
            server.wait()
    total = sum(tally.sent.values())
    print(
        f"\nthreadline serve --memory, {args.concurrency} connections, {elapsed:.0f} s, "
        f"{os.cpu_count()} CPUs (server and load generator on the same machine)"
    )
    print(f"{'kind':<22}{'sent':>8}{'expect':>8}   statuses")
    for kind in kinds():
        seen = {s: n for (k, s), n in sorted(tally.statuses.items()) if k == kind.name}
        shown = ", ".join(f"{s}: {n}" for s, n in seen.items())
        print(f"{kind.name:<22}{tally.sent[kind.name]:>8}{kind.expect:>8}   {shown}")
    print(
        f"\n{total} requests ({total / elapsed:.0f}/s): 5xx {tally.five_xx} (target 0), "
        f"unexpected status {sum(tally.unexpected.values())}, error events in streams "
        f"{tally.error_events}, dropped connections {tally.failures}"
    )


if __name__ == "__main__":
    main()
