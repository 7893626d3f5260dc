"""``threadline chat --tools``: a guarded call is asked about in a terminal, refused when piped.

Runs the command as a user would (a pseudo-terminal, or a pipe), with the real default model,
greedy sampling and instructions that make it call the tool; the tool writes a file, so the test
sees whether it ran. The answer is stored in the thread either way.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.test_chat import TIMEOUT, leave, spawn_chat

from threadline import FunctionApprovalResponseContent
from threadline.cli._library import ThreadLibrary

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("--tools", "tests.cli._approval_tools:send_email")
SYSTEM = ("--system", "You send emails with the send_email tool when asked.")
ASK = "Send an email to bob@example.com saying hello."


@pytest.fixture
def home(tmp_path: Path, local_model_path: Path) -> Path:
    return tmp_path / "home"


def _answers(home: Path, thread_id: str) -> list[FunctionApprovalResponseContent]:
    messages = asyncio.run(ThreadLibrary(home).messages(thread_id))
    return [c for m in messages for c in m.contents if type(c) is FunctionApprovalResponseContent]


def test_a_terminal_chat_asks_and_runs_the_call_on_yes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = tmp_path / "sent.txt"
    monkeypatch.setenv("TL_TEST_SENT_FILE", str(sent))
    monkeypatch.chdir(ROOT)  # the tools module is imported from the working directory
    child, thread_id = spawn_chat(home, *TOOLS, *SYSTEM, "--max-tokens", "96")
    child.sendline(ASK)
    child.expect(r"Run send_email\((\{.*\})\)\? \[y/N\] ")
    assert not sent.exists()
    child.sendline("y")
    child.expect("you> ")
    leave(child)
    assert sent.read_text().startswith("bob@example.com")
    (answer,) = _answers(home, thread_id)
    assert answer.approved and answer.function_call.name == "send_email"


def test_a_piped_chat_refuses_and_stores_the_refusal(home: Path, tmp_path: Path) -> None:
    sent = tmp_path / "sent.txt"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + str(ROOT)
    env["THREADLINE_HOME"] = str(home)
    env["TL_TEST_SENT_FILE"] = str(sent)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "chat",
            "--temperature",
            "0",
            *TOOLS,
            *SYSTEM,
        ],
        input=ASK,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "send_email(" in done.stderr and "needs approval; refused" in done.stderr
    assert not sent.exists()
    (thread_id,) = re.findall(r"^thread: (\S+)$", done.stderr, flags=re.M)
    (answer,) = _answers(home, thread_id)
    assert not answer.approved and "not interactive" in (answer.reason or "")


def test_a_bad_tools_spec_is_one_clear_line(home: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    env["THREADLINE_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", "--tools", "nosuchmodule:x"],
        input="hi",
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot import 'nosuchmodule'" in done.stderr
