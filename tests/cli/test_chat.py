"""``threadline chat`` driven through a pseudo-terminal, with the real default model.

Each test runs the command in a fresh process, as a user would, with its own THREADLINE_HOME (the
models directory is shared, see conftest). Greedy sampling (--temperature 0) keeps the model's
replies repeatable. No test waits a fixed time: each waits for the output it needs, so a busy
machine only makes them slower.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from tests.cli._spawn import cli_env, spawn_cli

from threadline.cli.memory_cmd import MEMORY_FILE
from threadline.memory import MemoryRecord, MemoryScope, SQLiteMemoryStore

TIMEOUT = 180  # generous: the CI machine may be busy; a healthy run takes seconds
ERASE = r"\r +\r"  # the spinner erasing itself: what follows is the reply


@pytest.fixture
def home(tmp_path: Path, local_model_path: Path) -> Path:
    return tmp_path / "home"


def spawn_chat(
    home: Path, *args: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[pexpect.spawn[str], str]:
    """Start an interactive chat; returns it at its first prompt, and the thread's id."""
    return spawn_cli(
        home,
        ["--temperature", "0", *args],
        r"(new|resumed) thread (thread_[0-9a-f]+)",
        timeout=TIMEOUT,
        preexec_fn=preexec_fn,
    )


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


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_works_when_started_with_sigint_ignored(home: Path) -> None:
    """Issue 21: started from a background job (SIGINT inherited as ignored), Ctrl-C did nothing
    and the reply ran to its end."""
    child, _ = spawn_chat(home, "--no-memory", "--max-tokens", "400", preexec_fn=_ignore_sigint)
    child.sendline("Write a long story about a dragon who learns to fly.")
    child.expect("fly\\.\r\n")
    child.expect(ERASE)
    child.expect(r"\w+\W+\w+")
    child.sendintr()
    child.expect(r"\[reply stopped; the thread is kept\]")
    child.expect("you> ")
    history = say(child, "/history")
    assert "[1] you: Write a long story about a dragon who learns to fly." in history
    assert "[2]" not in history
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
        env=cli_env(home),
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
        env=cli_env(home),
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
        env=cli_env(home),
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
            env=cli_env(home),
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
    env = cli_env(home)
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


def _memory_records(home: Path, user: str, kind: str, thread_id: str) -> list[MemoryRecord]:
    async def read() -> list[MemoryRecord]:
        store = SQLiteMemoryStore(home / MEMORY_FILE, embedder=None)
        try:
            return await store.list(
                scope=MemoryScope(user_id=user),
                kinds=[kind],  # type: ignore[list-item]
                thread_id=thread_id,
            )
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_resume_keeps_the_memory_state(home: Path) -> None:
    """Regression (issue 16.3): resuming restarted the memory's per-thread state.

    Two turns, end, resume, one turn, end: the thread must have one summary (the first is
    replaced, not kept beside a second) and its turns numbered 0..5 (not 0..3 then 0..1 again).
    """
    child, thread_id = spawn_chat(home, "--user", "ada", "--max-tokens", "8")
    say(child, "Hello, my name is Ada.")
    say(child, "I live in Porto.")
    leave(child)
    child, resumed = spawn_chat(home, "--user", "ada", "--thread", thread_id, "--max-tokens", "8")
    assert resumed == thread_id
    say(child, "What is my name?")
    leave(child)

    summaries = _memory_records(home, "ada", "summary", thread_id)
    assert len(summaries) == 1, [s.text for s in summaries]
    turns = _memory_records(home, "ada", "turn", thread_id)
    assert sorted(int(t.metadata["seq"]) for t in turns) == list(range(6))


def _one_shot(home: Path, *args: str, text: str = "hi") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", *args],
        input=text + "\n",
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=TIMEOUT,
    )


def _state_sql(home: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(home / "threads.db") as conn:
        conn.execute(sql, params)


def test_a_missing_or_damaged_saved_state_is_reported_not_restarted(home: Path) -> None:
    first = _one_shot(home, "--no-memory", "--max-tokens", "2", "--temperature", "0")
    assert first.returncode == 0, first.stderr
    thread_id = re.findall(r"thread: (thread_[0-9a-f]+)", first.stderr)[0]

    with sqlite3.connect(home / "threads.db") as conn:
        (good,) = conn.execute(
            "SELECT body FROM threadline_records WHERE id = ?", (thread_id,)
        ).fetchone()
    _state_sql(home, "UPDATE threadline_records SET body = '[1, 2]' WHERE id = ?", thread_id)
    damaged = _one_shot(home, "--no-memory", "--thread", thread_id)
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr
    assert f"the saved state of thread '{thread_id}' is damaged" in damaged.stderr
    assert len(damaged.stderr.strip().splitlines()) == 1

    other = "thread_" + "0" * 24  # a crafted state pointing the chat at another thread
    crafted_body = good.replace(f'"thread_id":"{thread_id}"}}', f'"thread_id":"{other}"}}')
    assert crafted_body != good
    _state_sql(home, "UPDATE threadline_records SET body = ? WHERE id = ?", crafted_body, thread_id)
    crafted = _one_shot(home, "--no-memory", "--thread", thread_id)
    assert crafted.returncode == 1 and "its store names another thread" in crafted.stderr

    _state_sql(home, "DELETE FROM threadline_records WHERE id = ?", thread_id)
    missing = _one_shot(home, "--no-memory", "--thread", thread_id)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"thread '{thread_id}' has no saved state" in missing.stderr

    shown = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", "show", thread_id],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=TIMEOUT,
    )
    assert shown.stdout.count("\n[") + 1 == 2  # nothing was added or restarted


def test_resume_by_prefix_refuses_an_ambiguous_one(home: Path) -> None:
    ids: list[str] = []
    for _ in range(2):
        done = _one_shot(home, "--no-memory", "--max-tokens", "2", "--temperature", "0")
        assert done.returncode == 0, done.stderr
        ids.append(re.findall(r"thread: (thread_[0-9a-f]+)", done.stderr)[0])
    ambiguous = _one_shot(home, "--no-memory", "--thread", "thread_")
    assert ambiguous.returncode == 1 and "Traceback" not in ambiguous.stderr
    assert "'thread_' matches 2 threads" in ambiguous.stderr
    assert all(repr(i) in ambiguous.stderr for i in ids)
    resumed = _one_shot(
        home, "--no-memory", "--max-tokens", "2", "--temperature", "0", "--thread", ids[0][:16]
    )
    assert resumed.returncode == 0 and f"thread: {ids[0]}" in resumed.stderr


def test_a_reply_with_escape_sequences_reaches_the_terminal_escaped(home: Path) -> None:
    """Regression (issue 20.11): replies were streamed raw, so a model could drive the terminal.

    A scripted model (the real one cannot be made to emit escapes on demand; see the driver)
    streams one character per chunk, so each escape sequence is split across chunks.
    """
    evil = "red \x1b[31mtext\x1b[0m, title \x1b]0;owned\x07, clear \x1b[2J, bidi \u202e done"
    env = cli_env(home)
    env["SCRIPTED_REPLIES"] = json.dumps([evil, evil, evil])
    driver = str(Path(__file__).with_name("_scripted_chat.py"))
    for mode in (["--no-memory"], ["--no-memory", "--group", "ann,bob"]):
        result = subprocess.run(
            [sys.executable, driver, "chat", *mode],
            input="hi\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "red \\x1b[31mtext\\x1b[0m, title \\x1b]0;owned\\x07, clear \\x1b[2J" in out
        assert "bidi \\u202e done" in out


def test_a_fork_keeps_its_parents_memory_summary(home: Path) -> None:
    """A fork's memory starts anew: its first summary must not replace the parent's."""
    first = _one_shot(
        home, "--user", "ada", "--max-tokens", "8", "--temperature", "0", text="I live in Porto."
    )
    assert first.returncode == 0, first.stderr
    parent = re.findall(r"thread: (thread_[0-9a-f]+)", first.stderr)[0]
    assert len(_memory_records(home, "ada", "summary", parent)) == 1
    fork = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", "fork", parent],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()
    second = _one_shot(
        home,
        "--user",
        "ada",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        "--thread",
        fork,
        text="I moved to Lisbon.",
    )
    assert second.returncode == 0, second.stderr
    assert len(_memory_records(home, "ada", "summary", parent)) == 1
    assert len(_memory_records(home, "ada", "summary", fork)) == 1


def test_the_chat_says_what_its_memory_does(home: Path) -> None:
    """Issue 21: banner, a line per learnt fact, /memory list|search|forget, and a quick /exit."""
    child, _ = spawn_chat(home, "--user", "ada", "--max-tokens", "24")
    banner = str(child.before)
    assert "memory: on for ada (--no-memory to turn off)" in banner

    learnt = say(child, "I'm vegetarian and I'm allergic to peanuts.")
    assert "remembered: you are" in learnt  # said as it is learnt, to the user

    listing = say(child, "/memory")
    assert "what the chat remembers about ada" in listing
    ids = re.findall(r"(mem_[0-9a-f]+)  you ", listing)
    assert ids
    assert "peanut" in say(child, "/memory search peanuts")
    assert "usage: /memory" in say(child, "/memory forget")  # empty: a clear one-line error
    assert f"forgot {ids[0]}" in say(child, f"/memory forget {ids[0]}")
    assert "no memory 'mem_nope' of ada" in say(child, "/memory forget mem_nope")
    assert "forgot" in say(child, "/memory forget all")
    assert "nothing remembered about ada yet" in say(child, "/memory")

    child.sendline("/exit")
    child.expect("saving this chat's summary to ada's memory")  # says what it is doing
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_memory_off_is_said_and_memory_commands_say_so(home: Path) -> None:
    child, _ = spawn_chat(home, "--no-memory", "--max-tokens", "8")
    assert "memory: off" in str(child.before)
    assert "memory is off for this chat" in say(child, "/memory")
    leave(child)


def test_a_long_chat_is_compacted_by_default_and_keeps_every_message(home: Path) -> None:
    # A 384-token window fills in a few turns: the chat goes on, turn 1 is summarized, not lost.
    child, thread_id = spawn_chat(home, "--ctx", "384", "--max-tokens", "32")
    say(child, "My name is Alice and I live in Lyon.")
    for topic in ["tea", "owls", "rivers", "bread", "glass", "chess", "trains", "salt", "ice"]:
        say(child, f"Tell me one fact about {topic}, in simple words for a beginner, please.")
    leave(child)

    shown = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", "show", thread_id],
        env=cli_env(home),
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
