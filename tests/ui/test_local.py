"""``threadline ui --home DIR``: the pages over the local home, the real command as a subprocess.

The home is made as the command makes it: threads in the library (``threads.db``), a group chat
saved as ``threadline chat --group`` saves it (scripted participants: the one fake), memories in
``memory.sqlite3``. Then the browser lists, reads, forks, searches and forgets.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import expect

from tests.ui.conftest import PacedScriptedClient, open_tab
from threadline import ChatAgent, ChatMessage, ScriptedChatClient
from threadline.cli._library import ThreadLibrary
from threadline.cli._ui_local import local_app
from threadline.cli.memory_cmd import open_store
from threadline.exceptions import ThreadlineError
from threadline.memory import MemoryRecord, MemoryScope
from threadline.multiagent import GroupChat

SRC = str(Path(__file__).resolve().parents[2] / "src")


async def _home(home: Path) -> tuple[str, str, str]:
    """A home with a thread of four messages, a thread whose only turn failed, one group chat and
    two memories of "eve"."""
    library = ThreadLibrary(home)
    thread = library.new_thread()
    assert thread.message_store is not None
    await thread.message_store.add_messages(
        [
            ChatMessage("user", text="plan a <b>trip</b> to Oslo"),
            ChatMessage("assistant", text="Oslo in June is lovely."),
            ChatMessage("user", text="and the budget?"),
            ChatMessage("assistant", text="About 1500 EUR."),
        ]
    )
    failing = library.new_thread()
    with pytest.raises(ThreadlineError):  # a model with nothing left to say fails the turn
        await ChatAgent(ScriptedChatClient([])).run("are you there?", thread=failing)
    await library.database.aclose()
    chat = GroupChat(
        [
            ChatAgent(ScriptedChatClient(["I would go by train."]), name="planner"),
            ChatAgent(ScriptedChatClient(["Trains are cheaper."]), name="critic"),
        ],
        max_rounds=2,
    )
    group = chat.get_new_thread()
    await chat.run("how do we travel?", thread=group)
    (home / "groups").mkdir()
    (home / "groups" / f"{group.id}.json").write_text(json.dumps(await group.serialize()))
    store = open_store(home)
    scope = MemoryScope(user_id="eve")
    await store.add(
        [
            MemoryRecord(kind="fact", text="eve is allergic to peanuts", scope=scope),
            MemoryRecord(
                kind="preference", text="eve prefers window seats", scope=scope, thread_id=thread.id
            ),
        ]
    )
    await store.aclose()
    return thread.id, group.id, failing.id


async def started(origin: str, process: asyncio.subprocess.Process) -> None:
    """Wait until the command answers (or fail with what it printed)."""
    host, port = origin.removeprefix("http://").split(":")
    for _ in range(300):
        if process.returncode is not None:
            out = await process.stdout.read() if process.stdout else b""
            pytest.fail(f"threadline ui exited with {process.returncode}: {out.decode()}")
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    pytest.fail("threadline ui did not start in 15 s")


@pytest.fixture
async def local_ui(tmp_path: Path) -> AsyncIterator[tuple[str, str, str, str]]:
    """``threadline ui --home H --port P`` over a filled home: its origin, thread and group ids."""
    home = tmp_path / "home"
    home.mkdir()
    thread_id, group_id, failed_id = await _home(home)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "threadline.cli.main", "ui"],
        *["--home", str(home), "--port", str(port)],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        await started(origin, process)
        yield origin, thread_id, group_id, failed_id
    finally:
        process.terminate()
        await process.communicate()


async def test_local_home_threads_group_chats_and_memories(
    local_ui: tuple[str, str, str, str], tmp_path: Path
) -> None:
    origin, thread_id, group_id, failed_id = local_ui
    outside: list[str] = []
    async with open_tab(origin, outside) as page:
        await page.goto(origin + "/")  # redirects to /ui/; no key asked
        items = page.locator("ul.threads li")
        await expect(items).to_have_count(3)
        group = page.locator(f'li[data-thread="{group_id}"]')
        await expect(group.locator(".badge")).to_have_text("group chat")
        await page.screenshot(path=tmp_path / "local-threads.png")

        # A group chat's transcript: each message under its speaker.
        await group.get_by_role("link").click()
        transcript = page.locator("ol.transcript > li")
        await expect(transcript).to_have_count(3)
        await expect(transcript.nth(1).locator(".who")).to_have_text("planner")
        await expect(transcript.nth(2).locator(".who")).to_have_text("critic")
        choices = page.get_by_role("list", name="Group chat")
        await expect(choices).to_contain_text("The manager chose, in order: planner → critic.")
        await expect(choices).to_contain_text("Next speaker: planner.")
        await expect(page.get_by_role("button", name="Send")).to_have_count(0)  # no chat here

        # A thread: HTML is text; fork after the second message, the branch has two.
        await page.goto(f"{origin}/ui/threads/{thread_id}")
        await expect(transcript.first).to_contain_text("plan a <b>trip</b> to Oslo")
        await page.get_by_role("button", name="Fork after message 2", exact=True).click()
        await expect(transcript).to_have_count(2)
        branch = page.url.rsplit("/", 1)[1]
        assert branch != thread_id
        await page.goto(f"{origin}/ui/threads/{thread_id}")
        await expect(page.locator("a.branch")).to_have_text([branch])

        # Memories: search shows scores; forget one after confirming.
        await page.goto(f"{origin}/ui/memories?user=eve&q=peanuts")
        hits = page.locator("ul.memories li")
        await expect(hits.first).to_contain_text("allergic to peanuts")  # best first
        await expect(hits.first.locator(".score")).to_contain_text("score")
        page.once("dialog", lambda dialog: dialog.accept())
        await hits.first.get_by_role("button", name="Forget", exact=False).click()
        await expect(page.get_by_text("allergic to peanuts")).to_have_count(0)
        await page.goto(f"{origin}/ui/memories?user=eve")
        await expect(hits).to_have_count(1)
        await expect(hits.first).to_contain_text("window seats")
        await expect(hits.first.get_by_role("link", name=thread_id)).to_be_visible()

        # A turn that failed: its input is kept, marked failed with the reason.
        await page.goto(f"{origin}/ui/threads/{failed_id}")
        await expect(transcript).to_have_count(1)
        await expect(transcript.first.locator(".badge.failed")).to_have_text("failed")
        await expect(transcript.first.locator(".error-note")).to_contain_text(
            "Failed input: the turn failed before its answer"
        )
        await expect(transcript.first).to_contain_text("are you there?")

        await page.goto(f"{origin}/ui/threads/thread_nope")
        await expect(page.get_by_role("heading", name="Not found (404)")).to_be_visible()


async def test_the_chat_box_runs_a_turn_on_a_saved_thread(tmp_path: Path) -> None:
    """``local_app(home, agent=...)`` (what ``threadline ui --chat`` serves) with a paced model."""
    home = tmp_path / "home"
    home.mkdir()
    thread_id, _, _ = await _home(home)
    model = PacedScriptedClient(["the reply comes word by word"])
    model.pace = 0.05
    agent = ChatAgent(model)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(local_app(home, agent=agent), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    origin = f"http://127.0.0.1:{port}"
    outside: list[str] = []
    try:
        async with open_tab(origin, outside) as page:
            await page.goto(f"{origin}/ui/threads/{thread_id}")
            await expect(page.locator("ol.transcript > li")).to_have_count(4)
            await page.evaluate(
                """() => { window.partials = [];
                   new MutationObserver(() => {
                     const live = document.getElementById('live-reply');
                     if (live) window.partials.push(live.textContent);
                   }).observe(document.body, {subtree: true, childList: true,
                                              characterData: true}); }"""
            )
            await page.get_by_label("Message", exact=True).fill("what about <i>hotels</i>?")
            await page.get_by_role("button", name="Send").click()
            await expect(page.locator("#live-reply")).to_have_text("the reply comes word by word")
            partials = await page.evaluate("window.partials")
            assert len({p for p in partials if p}) > 2, partials
            # A model that fails: the page says so; the input is kept, marked failed.
            await page.get_by_label("Message", exact=True).fill("still there?")
            await page.get_by_role("button", name="Send").click()
            await expect(page.locator("#live-reply")).to_contain_text("Error:")
            await page.reload()
            transcript = page.locator("ol.transcript > li")
            await expect(transcript).to_have_count(7)
            await expect(transcript.nth(4)).to_contain_text("what about <i>hotels</i>?")
            await expect(transcript.nth(5)).to_contain_text("the reply comes word by word")
            await expect(transcript.nth(6).locator(".badge.failed")).to_have_text("failed")
        assert [m.text for m in model.calls[0].messages][-1] == "what about <i>hotels</i>?"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "0"], "--port 0 is not a TCP port"),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
        (["--model", "qwen-0.5b"], "--model chooses the model of --chat; add --chat"),
    ],
)
async def test_bad_options_are_one_clear_line(args: list[str], says: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "threadline.cli.main", "ui", "--home", str(tmp_path), *args],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 1
    assert err.decode().startswith("threadline: error: ") and says in err.decode()
    assert "Traceback" not in err.decode() and not out
