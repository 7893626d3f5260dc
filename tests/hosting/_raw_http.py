"""Raw HTTP/1.1 over asyncio streams, for requests the official SDK cannot express.

Stdlib only: a body with bytes the SDK would never send, a path with ``%2F`` kept encoded, or two
requests on one keep-alive connection, to see exactly what the server answers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Connection:
    """One keep-alive connection to the server; ``request`` may be called many times."""

    def __init__(self, base_url: str, key: str = "key-alice") -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.key = key
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        assert self._reader is not None and self._writer is not None
        body = content if content is not None else b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
        head = {
            "host": f"{self.host}:{self.port}",
            "authorization": f"Bearer {self.key}",
            "content-type": "application/json",
            "content-length": str(len(body)),
            **(headers or {}),
        }
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
        self._writer.write("\r\n".join(lines).encode() + body)
        await self._writer.drain()
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection without answering")
        status = int(status_line.split()[1])
        answer_headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if "content-length" in answer_headers:
            data = await self._reader.readexactly(int(answer_headers["content-length"]))
        elif answer_headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                size = int((await self._reader.readline()).strip(), 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            data = await self._reader.read()
        return RawResponse(status=status, headers=answer_headers, body=data)


async def request(
    base_url: str, method: str, path: str, *, key: str = "key-alice", **kwargs: Any
) -> RawResponse:
    """One request on a connection of its own."""
    async with Connection(base_url, key) as connection:
        return await connection.request(method, path, **kwargs)
