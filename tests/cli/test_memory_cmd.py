"""``threadline memory ...`` in-process on a real memory file, and ``chat --user`` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from threadline.cli.main import main
from threadline.cli.memory_cmd import MEMORY_FILE
from threadline.memory import MemoryRecord, MemoryScope, SQLiteMemoryStore

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    return code, out, err


def remember(home: Path, user: str, text: str, kind: str = "fact") -> str:
    """Store one memory for ``user`` the way the chat would; returns its id."""

    async def save() -> str:
        store = SQLiteMemoryStore(home / MEMORY_FILE, embedder=None)
        record = MemoryRecord(
            kind=kind,  # type: ignore[arg-type]
            text=text,
            scope=MemoryScope(user_id=user),
            occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
        await store.add([record])
        await store.aclose()
        return record.id

    home.mkdir(parents=True, exist_ok=True)
    return asyncio.run(save())


def test_list_search_and_forget_one_users_memories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = remember(tmp_path, "alice", "The user is vegetarian.")
    bob = remember(tmp_path, "bob", "The user is vegetarian.")  # identical fact, other user
    remember(tmp_path, "alice", "alice: I live in Porto", kind="turn")

    code, out, _ = run(tmp_path, capsys, "memory", "list", "--user", "alice")
    assert code == 0
    assert alice in out and bob not in out and "Porto" not in out  # turns are not listed
    assert "2026-11-20" in out and "fact" in out

    code, out, _ = run(tmp_path, capsys, "memory", "search", "Porto", "--user", "alice", "--json")
    assert code == 0
    hit, *others = [json.loads(line) for line in out.splitlines()]  # by meaning, then words
    assert hit["kind"] == "turn" and "Porto" in hit["text"] and hit["score"] > 0
    assert all(other["score"] < hit["score"] for other in others)

    code, _, err = run(tmp_path, capsys, "memory", "forget", bob, "--user", "alice")
    assert code == 1 and f"no memory {bob!r} of user 'alice'" in err
    code, out, _ = run(tmp_path, capsys, "memory", "forget", alice, "--user", "alice")
    assert code == 0 and alice in out

    code, out, _ = run(tmp_path, capsys, "memory", "forget", "--all", "--user", "alice")
    assert code == 0 and "forgot 1 memory of alice" in out
    assert run(tmp_path, capsys, "memory", "list", "--user", "alice")[1] == ""
    assert bob in run(tmp_path, capsys, "memory", "list", "--user", "bob")[1]


def test_bad_usage_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(tmp_path, capsys, "memory", "search", "x", "--limit", "0")
    assert code == 1 and "--limit must be at least 1" in err
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(tmp_path), "memory", "forget"])  # neither an id nor --all
    assert exc.value.code == 2


def chat(home: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC, THREADLINE_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "chat", "--temperature", "0", *args],
        input=text,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_chat_remembers_per_user_with_the_embedded_model(
    tmp_path: Path, local_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = chat(tmp_path, "I'm vegetarian and I live in Porto.", "--user", "alice")
    assert done.returncode == 0, done.stderr
    _, out, _ = run(tmp_path, capsys, "memory", "search", "Porto", "--user", "alice", "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    assert any("live in Porto" in h["text"] and h["kind"] == "turn" for h in hits)
    assert any(h["kind"] == "summary" for h in hits)  # written when the chat ended
    assert run(tmp_path, capsys, "memory", "search", "Porto", "--user", "bob")[1] == ""

    done = chat(tmp_path, "Nothing to remember here.", "--no-memory", "--user", "carol")
    assert done.returncode == 0, done.stderr
    assert run(tmp_path, capsys, "memory", "list", "--user", "carol")[1] == ""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``threadline --home HOME ARGS...`` as a person runs it: a real process."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "--user must name someone"),
        ("   ", "--user must name someone"),
        ("a" * 129, "over the limit of 128"),
        ("ada\x1b[2J", "holds control characters"),
    ],
)
def test_forget_all_refuses_a_user_name_that_names_nobody(
    tmp_path: Path, name: str, says: str
) -> None:
    # An empty name fell back to the OS user: `forget --all --user ""` erased their memories.
    from threadline.cli.memory_cmd import os_user

    kept = remember(tmp_path, os_user(), "The user is vegetarian.")
    done = cli(tmp_path, "memory", "forget", "--all", "--user", name)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert says in line and "\x1b" not in line
    assert kept in cli(tmp_path, "memory", "list").stdout


def test_memory_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    remember(tmp_path, "ada", "The user \x1b]0;pwned\x07likes \u202etea\x1b[2J")
    listed = cli(tmp_path, "memory", "list", "--user", "ada")
    found = cli(tmp_path, "memory", "search", "tea", "--user", "ada")
    for out in (listed.stdout, found.stdout):
        assert "likes" in out
        assert not any(c in out for c in "\x1b\x07\u202e")
        assert "\\x1b" in out and "\\u202e" in out


def test_search_says_when_nothing_matched(tmp_path: Path) -> None:
    # With semantic search some memory of the user is always nearest, so the user searched
    # has none; another user's memory must not count as a match.
    remember(tmp_path, "bob", "The user is vegetarian.")
    done = cli(tmp_path, "memory", "search", "bicycle", "--user", "ada")
    assert done.returncode == 0 and done.stdout == ""
    assert "no memories of ada match 'bicycle'" in done.stderr
