"""Issue 20 item 18: bad input to the command is one line of threadline's own, never a traceback.

Each case runs the command as a user would (a subprocess), and checks the exit status, that the
error is one line naming the problem, and that nothing was changed.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests._sqlite_sql import OF_THREAD

SRC = str(Path(__file__).resolve().parents[2] / "src")


def threadline(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "THREADLINE_HOME": str(home),
    }
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode in (1, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_bad_ids_given_to_commands(tmp_path: Path) -> None:
    for args in (
        ["threads", "show", "../../etc/passwd"],
        ["threads", "fork", "thread\x1b[2J"],
        ["threads", "export", "-o", str(tmp_path / "x.json"), "a b"],
        ["chat", "--no-memory", "--thread", "../escape"],
    ):
        one_line_error(threadline(tmp_path, *args, stdin="hi"), "not a valid thread id")
    assert not (tmp_path / "x.json").exists()


def test_a_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    for args in (
        ["chat", "--no-memory"],
        ["threads", "list"],
        ["chat", "--group", "a,b"],
        ["memory", "list"],
        ["memory", "search", "x"],
    ):
        one_line_error(threadline(home, *args, stdin="hi"), "is a file, not a folder")
    assert home.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder")
def test_a_home_that_cannot_be_written(tmp_path: Path) -> None:
    home = tmp_path / "locked"
    home.mkdir(mode=0o500)
    try:
        one_line_error(threadline(home, "chat", "--no-memory", stdin="hi"), "cannot write")
    finally:
        home.chmod(0o700)


def test_a_home_inside_a_file(tmp_path: Path) -> None:
    """Unwritable even for root: the folder would have to be created inside a file."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(
        threadline(blocker / "home", "chat", "--no-memory", stdin="hi"),
        "cannot use THREADLINE_HOME",
    )


def test_a_threads_db_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "threads.db").write_bytes(b"this is not SQLite\x00" * 100)
    for args in (["threads", "list"], ["threads", "show", "thread_x"], ["chat", "--thread", "t"]):
        one_line_error(threadline(tmp_path, *args, stdin="hi"), "threads.db")
    assert (tmp_path / "threads.db").read_bytes() == b"this is not SQLite\x00" * 100


def test_corrupt_saved_state_rows(tmp_path: Path) -> None:
    """A state record whose body is not JSON, or has a wrong type: listed, and named on resume."""
    done = threadline(tmp_path, "threads", "import", "-", stdin=_THREAD_FILE)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "threads.db") as conn:
        conn.execute("UPDATE threadline_records SET body = '{not json' WHERE id = 'thread_ok'")
    listing = threadline(tmp_path, "threads", "list")
    assert listing.returncode == 0 and "thread_ok" in listing.stdout, listing.stderr
    assert "Traceback" not in listing.stderr
    forked = threadline(tmp_path, "threads", "fork", "thread_ok")
    assert forked.returncode == 0 and forked.stdout.startswith("thread_"), forked.stderr
    one_line_error(
        threadline(tmp_path, "chat", "--no-memory", "--thread", "thread_ok", stdin="hi"),
        "the saved state of thread 'thread_ok' is damaged",
    )


def test_corrupt_message_rows(tmp_path: Path) -> None:
    done = threadline(tmp_path, "threads", "import", "-", stdin=_THREAD_FILE)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "threads.db") as conn:
        conn.execute(
            f"UPDATE threadline_messages SET body = X'00ff' WHERE {OF_THREAD}", ("thread_ok",)
        )
    for args in (["threads", "show", "thread_ok"], ["threads", "export", "thread_ok"]):
        one_line_error(threadline(tmp_path, *args), "stored message #1 cannot be read")
    one_line_error(
        threadline(tmp_path, "chat", "--no-memory", "--thread", "thread_ok", stdin="hi"),
        "stored message #1 cannot be read",
    )
    with sqlite3.connect(tmp_path / "threads.db") as conn:
        rows = conn.execute("SELECT COUNT(*) FROM threadline_messages").fetchone()
    assert rows == (1,)  # the chat added nothing to a thread it could not read


_THREAD_FILE = """{"type": "threadline.thread", "schema_version": 2, "thread_id": "thread_ok",
"user_id": null, "binding": {"service": null, "agent_id": null, "agent_name": null},
"service_thread_id": null, "context_providers": {},
"store": {"kind": "memory", "state": {"messages": [
  {"role": "user", "text": "hello", "message_id": "m1"}]}}}"""
