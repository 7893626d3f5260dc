"""The web UI in a real headless Chromium against a real ``threadline serve`` app on loopback.

The server is the one ``create_app`` makes (SQLite thread database, conversation memory on a
real SQLite memory store, the process's traces kept by a ``SpanBuffer``), started in the test's
event loop; the model is scripted (the one fake: deterministic replies). Data is made through the
official ``openai`` client, then read, changed and checked in the browser: Debian's ``chromium``
driven by Playwright for Python (the package only, pointed at the system browser). Without
chromium the tests skip, or fail under ``THREADLINE_REQUIRE_SERVICES=1`` (CI installs it).
Every request the browser makes is checked to stay on the server: the pages load nothing from
elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
import uvicorn
from playwright.async_api import Page, Route, async_playwright

from tests._otel import reset_globals
from threadline import ChatAgent, ChatMessage, ScriptedChatClient
from threadline.clients.base import ChatOptions
from threadline.hosting import ServerConfig, create_app
from threadline.memory import ConversationMemory, SQLiteMemoryStore
from threadline.types.responses import ChatResponseUpdate
from threadline.ui import SpanBuffer

KEYS = {"key-alice": "alice", "key-bob": "bob"}


class PacedScriptedClient(ScriptedChatClient):
    """The scripted model, streaming one word every ``pace`` seconds, as a real model does.

    Without a pause every word of a scripted reply reaches the browser in one network read, and
    a page that waited for the whole reply could not be told from one that streams it.
    """

    pace = 0.0

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        async for update in super().get_streaming_response(messages, options=options):
            await asyncio.sleep(self.pace)
            yield update


@dataclass
class Served:
    """A running server, its model, its memory store and the browser pointed at it."""

    origin: str
    model: PacedScriptedClient
    store: SQLiteMemoryStore
    shots: Path
    outside: list[str] = field(default_factory=lambda: [])
    """Requests the browser tried to send anywhere but the server (must stay empty)."""
    clients: dict[str, openai.AsyncOpenAI] = field(default_factory=lambda: {})
    usage: dict[str, tuple[int, int]] = field(default_factory=lambda: {})
    """Input and output tokens the API reported per conversation (the tests' own tally)."""

    def client(self, key: str = "key-alice") -> openai.AsyncOpenAI:
        """The official client with ``key`` (one per key, closed with the server)."""
        if key not in self.clients:
            self.clients[key] = openai.AsyncOpenAI(base_url=self.origin + "/v1", api_key=key)
        return self.clients[key]


def chromium() -> str:
    """The system chromium, or skip (fail when services are required)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (apt-get install -y chromium chromium-driver)")
        pytest.skip("chromium is not installed")
    return found


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The server on a free loopback port, with the UI and a buffer of its traces."""
    reset_globals()
    spans = SpanBuffer.install()
    assert spans is not None
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    model = PacedScriptedClient([])
    agent = ChatAgent(model, "You are a test agent.", context_providers=[ConversationMemory(store)])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(agent, config, spans=spans)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    served = Served(origin=f"http://127.0.0.1:{port}", model=model, store=store, shots=shots)
    try:
        yield served
    finally:
        for client in served.clients.values():
            await client.close()
        server.should_exit = True
        await task
        await store.aclose()
        reset_globals()


@contextlib.asynccontextmanager
async def open_tab(origin: str, outside: list[str]) -> AsyncGenerator[Page]:
    """A fresh headless Chromium tab that may reach ``origin`` only (others go to ``outside``)."""
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        context = await browser.new_context(viewport={"width": 1100, "height": 900})

        async def only_ours(route: Route) -> None:
            if route.request.url.startswith(origin + "/"):
                await route.continue_()
            else:
                outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_ours)
        tab = await context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield tab
        finally:
            await browser.close()
        assert not errors, f"the page raised: {errors}"
        assert not outside, f"the page reached beyond the server: {outside}"


@pytest.fixture
async def page(served: Served) -> AsyncIterator[Page]:
    """A tab on the served UI."""
    async with open_tab(served.origin, served.outside) as tab:
        yield tab


async def sign_in(page: Page, served: Served, key: str = "key-alice", path: str = "/ui/") -> None:
    """Open ``path`` and type the key into the page (kept in sessionStorage, not the URL)."""
    await page.goto(served.origin + path)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Use key").click()
