"""``threadline chat`` driven through a pseudo-terminal, with the real default model.

Each test runs the command in a fresh process, as a user would, with its own THREADLINE_HOME (the
models directory is shared, see conftest). Greedy sampling (--temperature 0) keeps the model's
replies repeatable. No test waits a fixed time: each waits for the output it needs, so a busy
machine only makes them slower.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
TIMEOUT = 180  # generous: the CI machine may be busy; a healthy run takes seconds
ERASE = r"\r +\r"  # the spinner erasing itself: what follows is the reply


@pytest.fixture
def home(tmp_path: Path, local_model_path: Path) -> Path:
    return tmp_path / "home"


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["THREADLINE_HOME"] = str(home)
    env["TERM"] = "dumb"  # no readline escape sequences in the transcript
    return env


def spawn_chat(home: Path, *args: str) -> tuple[pexpect.spawn[str], str]:
    """Start an interactive chat; returns it at its first prompt, and the thread's id."""
    child: pexpect.spawn[str] = pexpect.spawn(
        sys.executable,
        ["-m", "threadline.cli.main", "chat", "--temperature", "0", *args],
        env=_env(home),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
    )
    child.expect(r"(new|resumed) thread (thread_[0-9a-f]+)")
    match = child.match
    assert isinstance(match, re.Match)
    thread_id = str(match.group(2))
    child.expect("you> ")
    return child, thread_id


def say(child: pexpect.spawn[str], text: str) -> str:
    """Send a line and return everything printed until the next prompt."""
    child.sendline(text)
    child.expect("you> ")
    return str(child.before)


def leave(child: pexpect.spawn[str]) -> None:
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_two_turns_then_resume_shows_both(home: Path) -> None:
    child, thread_id = spawn_chat(home, "--max-tokens", "24")
    say(child, "Hello, my name is Ada.")
    say(child, "What is my name?")
    leave(child)

    child, resumed = spawn_chat(home, "--thread", thread_id[:12], "--max-tokens", "24")
    assert resumed == thread_id
    history = say(child, "/history")
    lines = [line.strip() for line in history.splitlines() if line.strip().startswith("[")]
    assert lines[0] == "[1] you: Hello, my name is Ada."
    assert lines[1].startswith("[2] assistant: ")
    assert lines[2] == "[3] you: What is my name?"
    assert lines[3].startswith("[4] assistant: ")
    assert len(lines) == 4
    listing = say(child, "/threads")
    assert f"* {thread_id}" in listing
    leave(child)


def test_ctrl_c_stops_the_reply_and_keeps_the_thread(home: Path) -> None:
    # A first turn through the non-interactive mode (stdin is a pipe): prints the reply only.
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "chat",
            "--max-tokens",
            "16",
            "--temperature",
            "0",
        ],
        input="Hello, my name is Ada.\n",
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=TIMEOUT,
        check=True,
    )
    assert first.stdout.strip()  # the reply, and nothing else, on stdout
    thread_id = re.findall(r"thread: (thread_[0-9a-f]+)", first.stderr)[0]

    # Greedy decoding makes this prompt run to the 400-token limit: long enough to interrupt.
    child, _ = spawn_chat(home, "--thread", thread_id, "--max-tokens", "400")
    child.sendline("Write a long story about a dragon who learns to fly.")
    child.expect("fly\\.\r\n")
    child.expect(ERASE)  # the "thinking" spinner stops when the first token arrives...
    child.expect(r"\w+\W+\w+")  # ...and the reply is streaming: two words are out
    child.sendintr()
    child.expect(r"\[reply stopped; the thread is kept\]")
    child.expect("you> ")

    history = say(child, "/history")
    assert "[1] you: Hello, my name is Ada." in history
    assert "[2] assistant: " in history
    assert "[3] you: Write a long story about a dragon who learns to fly." in history
    assert "[4]" not in history  # the interrupted reply is not stored

    # Saved as shown: another process reads the same three messages.
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    again = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", "show", thread_id],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=TIMEOUT,
        check=True,
    )
    assert again.stdout.count("\n[") + 1 == 3 and "[3] you: Write a long story" in again.stdout


def test_in_chat_commands(home: Path) -> None:
    child, first = spawn_chat(home, "--max-tokens", "8")
    assert "/switch ID" in say(child, "/help")
    assert "nothing to fork yet" in say(child, "/fork")
    say(child, "Hi")
    assert f"* {first}" in say(child, "/threads")
    forked = say(child, "/fork")
    fork_id = re.findall(r"-> (thread_[0-9a-f]+)", forked)[0]
    assert "[1] you: Hi" in say(child, "/history")  # the fork starts with the parent's history
    new = say(child, "/new")
    assert "new thread" in new and "(no messages yet)" in say(child, "/history")
    switched = say(child, f"/switch {first[:14]}")  # a unique start of the id is enough
    assert f"switched to thread {first}" in switched
    assert "unknown command" in say(child, "/nope")
    listing = say(child, "/threads")
    assert fork_id in listing and f"* {first}" in listing
    leave(child)


def test_unknown_thread_is_a_clear_error(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", "--thread", "thread_nope"],
        input="hi\n",
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert "no saved thread 'thread_nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_option_names_a_model_or_a_file(home: Path, tmp_path: Path) -> None:
    def chat(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "threadline.cli.main", "chat", *args],
            input="hi\n",
            capture_output=True,
            text=True,
            env=_env(home),
            timeout=TIMEOUT,
        )

    unknown = chat("--model", "qwen-7b")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert (
        "unknown model 'qwen-7b': use one of qwen-0.5b, qwen-1.5b, smollm2-135m" in unknown.stderr
    )
    missing = chat("--model", str(tmp_path / "none.gguf"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    named = chat("--model", "qwen-0.5b", "--max-tokens", "4", "--temperature", "0")
    assert named.returncode == 0 and named.stdout.strip(), named.stderr


def test_first_use_assembles_the_model_with_progress(home: Path, tmp_path: Path) -> None:
    env = _env(home)
    env["THREADLINE_MODELS"] = str(tmp_path / "models")  # empty: this is the first use
    result = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", "--max-tokens", "4"],
        input="hi\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "assembling the model's file (first use only)..." in result.stderr
    assert " 100%" in result.stderr
    assert (tmp_path / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").is_file()


def test_a_long_chat_is_compacted_by_default_and_keeps_every_message(home: Path) -> None:
    # A 384-token window fills in a few turns: the chat goes on, turn 1 is summarized, not lost.
    child, thread_id = spawn_chat(home, "--ctx", "384", "--max-tokens", "32")
    say(child, "My name is Alice and I live in Lyon.")
    for topic in ["tea", "owls", "rivers", "bread", "glass", "chess", "trains", "salt", "ice"]:
        say(child, f"Tell me one fact about {topic}, in simple words for a beginner, please.")
    leave(child)

    shown = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", "show", thread_id],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.splitlines()
    assert shown[0] == "[1] you: My name is Alice and I live in Lyon."
    starts = [i for i, line in enumerate(shown) if "[summary of " in line]
    assert starts, "\n".join(shown)
    ends = [i for i, line in enumerate(shown) if re.match(r"\[\d+\] ", line) and i > starts[-1]]
    latest = "\n".join(shown[starts[-1] : ends[0] if ends else None])
    assert "Alice" in latest and "Lyon" in latest, latest
    assert len([line for line in shown if re.match(r"\[\d+\] you: ", line)]) == 10
