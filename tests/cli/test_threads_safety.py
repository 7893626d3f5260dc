"""``threads import`` of hostile files, and ``threads list``/``show`` of hostile or corrupt data.

A thread file may come from anyone: it is bounded, checked and refused with one line naming the
problem, never a traceback, and nothing is written. What is printed from a thread cannot drive
the terminal, and one unreadable thread never hides the others.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from threadline.cli._thread_file import MAX_IMPORT_BYTES
from threadline.cli.main import main
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types import ChatMessage, Role


def run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    return code, out, err


def thread_file(thread_id: str = "thread_new", text: str = "hello") -> dict[str, object]:
    message = ChatMessage(Role.USER, "placeholder").to_dict()
    message["text"] = text
    return {
        "type": "threadline.thread",
        "schema_version": 1,
        "thread_id": thread_id,
        "binding": {},
        "store": {"kind": "memory", "state": {"messages": [message]}},
    }


def save(home: Path, thread_id: str, *texts: str) -> None:
    async def go() -> None:
        store = SQLiteChatMessageStore(home / "threads.db", thread_id=thread_id)
        await store.add_messages([ChatMessage(Role.USER, t) for t in texts])

    asyncio.run(go())


def assert_refused(
    home: Path, capsys: pytest.CaptureFixture[str], file: Path, *expected: str
) -> str:
    db = home / "threads.db"
    before = db.read_bytes() if db.exists() else None
    code, out, err = run(home, capsys, "threads", "import", str(file))
    assert code == 1, err
    assert out == ""
    assert err.startswith("threadline: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "\x1b" not in err and "\x00" not in err
    for text in expected:
        assert text in err, err
    assert (db.read_bytes() if db.exists() else None) == before  # nothing written
    return err


def test_an_oversized_file_is_refused_without_reading_it_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(MAX_IMPORT_BYTES + 1)  # sparse: costs no disk
    assert_refused(tmp_path / "home", capsys, big, str(big), "larger than", "67,108,864 bytes")


def test_deeply_nested_json_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert_refused(tmp_path / "home", capsys, deep, "nested too deep")
    # The same nesting, valid JSON inside an otherwise good thread file.
    state = json.dumps(thread_file())
    deep.write_text(
        state[:-2] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}}", encoding="utf-8"
    )
    assert_refused(tmp_path / "home", capsys, deep, "nested too deep")


@pytest.mark.parametrize(
    ("thread_id", "shown"),
    [
        ("../../etc/passwd", "'../../etc/passwd'"),
        ("a\x00b", r"'a\x00b'"),
        ("two\nlines", r"'two\nlines'"),
        ("\x1b]0;pwned\x07\x1b[2J", r"'\x1b]0;pwned\x07\x1b[2J'"),
        ("x" * 1_000_000, "(1000000 characters)"),
        ("-rf", "'-rf'"),
    ],
    ids=["path", "nul", "newline", "ansi", "megabyte", "option"],
)
def test_bad_thread_ids_are_refused(
    thread_id: str, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, "thread_keep", "kept")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(thread_file(thread_id)), encoding="utf-8")
    err = assert_refused(tmp_path, capsys, bad, "field 'thread_id'", shown, "not a valid thread id")
    assert len(err) < 600


def test_bad_ids_on_the_command_line_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, "thread_keep", "kept")
    code, _, err = run(tmp_path, capsys, "threads", "show", "../thread_keep")
    assert code == 1 and "not a valid thread id" in err
    code, _, err = run(tmp_path, capsys, "threads", "delete", "thread\x1b[2J")
    assert code == 1 and "\x1b" not in err and r"\x1b" in err


def test_lone_surrogates_are_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, "thread_keep", "kept")
    bad = tmp_path / "surrogate.json"
    # json.dumps writes the lone surrogate as the escape "\ud800", which json.loads accepts.
    bad.write_text(json.dumps(thread_file(text="bad \ud800 text")), encoding="utf-8")
    assert_refused(
        tmp_path,
        capsys,
        bad,
        "field store.state.messages[0].text",
        "not valid Unicode",
        r"'\ud800' at character 4",
    )
    key = tmp_path / "key.json"
    state = thread_file()
    state["binding"] = {"\udc00": 1}
    key.write_text(json.dumps(state), encoding="utf-8")
    assert_refused(tmp_path, capsys, key, "field binding.")
    code, out, _ = run(tmp_path, capsys, "threads", "list")
    assert code == 0 and "thread_keep" in out


def test_printed_text_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\r"
    save(tmp_path, "thread_hostile", hostile + " title", "line one\nline two\ttabbed")
    code, out, _ = run(tmp_path, capsys, "threads", "list")
    assert code == 0
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert raw not in out
    # Shown escaped (\r is whitespace: the one-line title folds it away).
    assert r"\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil title" in out
    code, out, _ = run(tmp_path, capsys, "threads", "show", "thread_hostile")
    assert code == 0 and "\x1b" not in out
    assert "line one\nline two\ttabbed" in out  # a message keeps its own line breaks


def _write_raw_thread(db: Path, thread_id: str, body: bytes) -> None:
    conn = sqlite3.connect(db)
    with conn:
        num = conn.execute(
            "INSERT INTO threadline_threads (thread_id, version, created_at, updated_at) "
            "VALUES (?, 1, 0, 0)",
            (thread_id,),
        ).lastrowid
        conn.execute(
            "INSERT INTO threadline_messages (thread, seq, message_id, body) "
            "VALUES (?, 1, 'm1', ?)",
            (num, body),
        )
    conn.close()


def test_list_survives_bad_threads_and_lists_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, "thread_good", "a good thread")
    db = tmp_path / "threads.db"
    # Written before imports were checked: a lone surrogate inside a stored record.
    _write_raw_thread(
        db, "thread_surrogate", b'{"role":"user","text":"bad \\ud800 text","message_id":"m1"}'
    )
    _write_raw_thread(db, "thread_garbage", b"\x00\x01 not a record")
    _write_raw_thread(db, "bad\x1bid", b'{"role":"user","text":"x","message_id":"m1"}')
    save(tmp_path, "thread_loop", "looped")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE threadline_threads SET parent_id = thread_id, fork_version = 1 "
            "WHERE thread_id = 'thread_loop'"
        )
    conn.close()

    code, out, err = run(tmp_path, capsys, "threads", "list")
    assert code == 0
    assert "a good thread" in out
    assert r"bad \ud800 text" in out  # shown, escaped: printing it no longer crashes
    assert "\x1b" not in out + err
    for bad in ("thread_garbage", "thread_loop", r"bad\x1bid"):
        row = next(line for line in out.splitlines() if bad in line)
        assert "[unreadable:" in row
        assert f"thread {bad} cannot be read" in err
    assert "threads delete thread_loop" in err

    code, out, _ = run(tmp_path, capsys, "threads", "list", "--json")
    entries = {e["thread_id"]: e for e in map(json.loads, out.splitlines())}
    assert entries["thread_good"]["error"] is None
    assert "loop" in entries["thread_loop"]["error"]
    assert len(entries) == 5

    # A thread holding invalid text still exports; importing the file names the field.
    exported = tmp_path / "surrogate.json"
    code, _, err = run(
        tmp_path, capsys, "threads", "export", "thread_surrogate", "-o", str(exported)
    )
    assert code == 0, err
    assert r"bad \ud800 text" in exported.read_text(encoding="utf-8")
    assert_refused(tmp_path / "other", capsys, exported, "store.state.messages[0].text")

    # The bad ones can be removed, after which the listing is clean.
    for bad in ("thread_garbage", "thread_loop", "thread_surrogate"):
        assert run(tmp_path, capsys, "threads", "delete", bad)[0] == 0
    code, out, err = run(tmp_path, capsys, "threads", "list")
    assert code == 0 and "thread_good" in out and "thread_loop" not in out
