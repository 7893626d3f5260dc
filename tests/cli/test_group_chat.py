"""``threadline chat --group``: a labelled group chat of embedded agents, saved and resumed.

Runs the command in fresh processes with the real embedded model; assertions are about who spoke
and what was saved, never the model's words.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pexpect

SRC = str(Path(__file__).resolve().parents[2] / "src")
ARGS = ["--temperature", "0", "--max-tokens", "8", "--ctx", "1024"]


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "THREADLINE_HOME": str(home),
        "TERM": "dumb",
    }


async def _chat(home: Path, text: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",
        "chat",
        *ARGS,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(home),
    )
    out, err = await asyncio.wait_for(proc.communicate(text.encode()), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_group_turn_is_labelled_saved_and_resumed(
    tmp_path: Path, local_model_path: Path
) -> None:
    home = tmp_path / "home"
    code, out, err = await _chat(home, "Name a fruit.", "--group", "ann,bob")
    assert code == 0, err
    assert re.findall(r"^\[(\w+)\] ", out, flags=re.M) == ["ann", "bob"]
    thread_id = re.search(r"thread: (group_[0-9a-f]+)", err)
    assert thread_id is not None
    saved = home / "groups" / f"{thread_id.group(1)}.json"
    assert len(json.loads(saved.read_text())["transcript"]["state"]["messages"]) == 3

    code, out, err = await _chat(
        home, "Another.", "--group", "ann,bob", "--thread", thread_id.group(1)
    )
    assert code == 0, err
    assert re.findall(r"^\[(\w+)\] ", out, flags=re.M) == ["ann", "bob"]
    state = json.loads(saved.read_text())
    assert len(state["transcript"]["state"]["messages"]) == 6
    assert state["rounds_used"] == 4


async def test_bad_group_and_unknown_thread_are_clear_errors(
    tmp_path: Path, local_model_path: Path
) -> None:
    code, _, err = await _chat(tmp_path, "hi", "--group", "solo")
    assert code == 2 and "two or more distinct names" in err
    code, _, err = await _chat(tmp_path, "hi", "--group", "a,b", "--thread", "group_nope")
    assert code == 1 and "no saved group chat 'group_nope'" in err


async def test_chat_and_group_chat_refuse_bad_options_and_empty_input_alike(
    tmp_path: Path,
) -> None:
    """Both start the same way: a clear error and exit status 2 before any model is opened."""
    home = tmp_path / "home"
    for mode in ([], ["--group", "ann,bob"]):
        code, _, err = await _chat(home, "hi", *mode, "--max-tokens", "2048")
        assert code == 2 and "--max-tokens (2048) must be positive and smaller" in err, err
        code, _, err = await _chat(home, "  \n", *mode)
        assert code == 2 and "nothing to send: stdin was empty" in err, err
    assert not home.exists() or not any(home.rglob("*.json"))


def test_interactive_group_chat_labels_each_agent(tmp_path: Path, local_model_path: Path) -> None:
    child: pexpect.spawn[str] = pexpect.spawn(
        sys.executable,
        ["-m", "threadline.cli.main", "chat", *ARGS, "--group", "ann,bob,cy"],
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=300,
        dimensions=(50, 200),
    )
    child.expect(r"new thread (group_[0-9a-f]+)")
    child.expect("you> ")
    child.sendline("Hello.")
    child.expect("you> ")
    assert re.findall(r"\[(\w+)\] ", str(child.before)) == ["ann", "bob", "cy"]
    child.sendline("/exit")
    child.expect(pexpect.EOF)
