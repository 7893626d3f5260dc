"""``threadline chat --group``: a labelled group chat of embedded agents, saved and resumed.

Runs the command in fresh processes with the real embedded model; assertions are about who spoke
and what was saved, never the model's words.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pexpect
from tests.cli._spawn import cli_env, spawn_cli

from threadline import ChatAgent, GroupChat, ScriptedChatClient
from threadline.cli._library import ThreadLibrary
from threadline.cli.group_chat import parse_group, read_group_file
from threadline.cli.memory_cmd import MEMORY_FILE
from threadline.compaction import summary_mark
from threadline.memory import MemoryScope, SQLiteMemoryStore
from threadline.multiagent.thread import participant_thread_id
from threadline.threads.portable import portable_thread_state
from threadline.types import ChatMessage, Role

ARGS = ["--temperature", "0", "--max-tokens", "8", "--ctx", "1024"]


def spawn_group(home: Path, *args: str) -> tuple[pexpect.spawn[str], str]:
    """Start an interactive group chat; returns it at its first prompt, and the group's id."""
    return spawn_cli(home, args, r"new thread (group_[0-9a-f]+)", timeout=300)


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
        env=cli_env(home),
    )
    out, err = await asyncio.wait_for(proc.communicate(text.encode()), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _named(folder: Path, part: str) -> list[Path]:
    return [p for p in folder.rglob("*") if part in p.name]


def _threads(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "threads", *args],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=300,
    )


async def test_a_group_turn_is_labelled_saved_in_the_library_and_resumed(
    tmp_path: Path, local_model_path: Path
) -> None:
    home = tmp_path / "home"
    code, out, err = await _chat(home, "Name a fruit.", "--no-memory", "--group", "ann,bob")
    assert code == 0, err
    assert re.findall(r"^\[(\w+)\] ", out, flags=re.M) == ["ann", "bob"]
    found = re.search(r"thread: (group_[0-9a-f]+)", err)
    assert found is not None
    group_id = found.group(1)
    assert not (home / "groups").exists()  # no file per group any more: the library keeps it

    listed = [json.loads(line) for line in _threads(home, "list", "--json").stdout.splitlines()]
    assert [(t["thread_id"], t["kind"], t["participants"]) for t in listed] == [
        (group_id, "group", ["ann", "bob"])
    ]  # one entry: the participants' own threads are not listed
    assert listed[0]["messages"] == 3
    table = _threads(home, "list").stdout
    assert "[group: ann, bob] Name a fruit." in table

    # Resumed by a unique start of its id; the transcript continues.
    code, out, err = await _chat(
        home, "Another.", "--no-memory", "--group", "ann,bob", "--thread", group_id[:12]
    )
    assert code == 0, err
    assert re.findall(r"^\[(\w+)\] ", out, flags=re.M) == ["ann", "bob"]
    shown = _threads(home, "show", group_id).stdout
    assert re.findall(r"^\[\d+\] (\w+):", shown, flags=re.M) == [
        "you",
        "ann",
        "bob",
        "you",
        "ann",
        "bob",
    ]
    exported = json.loads(_threads(home, "export", group_id).stdout)
    assert len(exported["store"]["state"]["messages"]) == 6

    # A fork is a group chat of its own, with the same history, and continues apart.
    fork = _threads(home, "fork", group_id[:10]).stdout.strip()
    assert re.fullmatch(r"group_[0-9a-f]+", fork)
    code, _, err = await _chat(
        home, "Third.", "--no-memory", "--group", "ann,bob", "--thread", fork
    )
    assert code == 0, err
    assert _threads(home, "show", fork).stdout.count("\n[") + 1 == 9
    assert _threads(home, "show", group_id).stdout.count("\n[") + 1 == 6

    # The kinds do not mix, and the message says how to continue each.
    code, _, err = await _chat(home, "hi", "--no-memory", "--thread", group_id)
    assert code == 1 and "is a group chat" in err and "--group" in err
    code, _, err = await _chat(home, "hi", "--no-memory", "--group", "ann,cy", "--thread", fork)
    assert code == 1 and "participants" in err and "Traceback" not in err

    deleted = _threads(home, "delete", fork)
    assert deleted.returncode == 0
    assert [
        json.loads(x)["thread_id"] for x in _threads(home, "list", "--json").stdout.splitlines()
    ] == [group_id]


async def test_group_chat_with_user_gives_every_participant_memory(
    tmp_path: Path, local_model_path: Path
) -> None:
    home = tmp_path / "home"
    code, _, err = await _chat(home, "I live in Porto.", "--user", "ada", "--group", "ann,bob")
    assert code == 0, err
    group_id = re.findall(r"thread: (group_[0-9a-f]+)", err)[0]

    async def turns() -> set[str | None]:
        store = SQLiteMemoryStore(home / MEMORY_FILE, embedder=None)
        try:
            found = await store.list(scope=MemoryScope(user_id="ada"), kinds=["turn"])
            return {r.thread_id for r in found}
        finally:
            await store.aclose()

    assert {f"{group_id}.ann", f"{group_id}.bob"} <= await turns()
    code, _, err = await _chat(
        home, "hi", "--user", "bob", "--group", "ann,bob", "--thread", group_id
    )
    assert code == 1 and "belongs to user 'ada'" in err


async def test_a_crafted_group_state_is_refused_and_writes_nowhere(
    tmp_path: Path, local_model_path: Path
) -> None:
    """Regression (issue 20.9): a saved state's ids named files and other threads unchecked."""
    home = tmp_path / "home"
    code, _, err = await _chat(home, "Hi.", "--no-memory", "--group", "ann,bob")
    assert code == 0, err
    group_id = re.findall(r"thread: (group_[0-9a-f]+)", err)[0]
    with sqlite3.connect(home / "threads.db") as conn:
        (good,) = conn.execute(
            "SELECT body FROM threadline_records WHERE id = ?", (group_id,)
        ).fetchone()
    for bad, why in (
        (good.replace(f'"thread_id":"{group_id}"', '"thread_id":"../../escaped"', 1), "names"),
        (good.replace(f'"{group_id}.bob"', '"thread_0123"'), "participant 'bob'"),
        ('{"type": "threadline.group_thread"}', "damaged"),
    ):
        assert bad != good
        with sqlite3.connect(home / "threads.db") as conn:
            conn.execute("UPDATE threadline_records SET body = ? WHERE id = ?", (bad, group_id))
        code, out, err = await _chat(
            home, "Again.", "--no-memory", "--group", "ann,bob", "--thread", group_id
        )
        assert code == 1 and why in err and "Traceback" not in err, err
        assert not out.strip()
    assert not _named(tmp_path, "escaped")
    assert _threads(home, "show", group_id).stdout.count("\n[") + 1 == 3  # nothing added


async def test_bad_group_and_unknown_thread_are_clear_errors(tmp_path: Path) -> None:
    cases = [
        (["--group", "solo"], "needs two or more agents"),
        (["--group", "a,a"], "two agents are named 'a'"),
        (["--group", "a,,b"], "an agent has no name"),
        (["--group", "=poet,b"], "an agent has no name"),
        (["--group", "a=writes\npoems,b"], "line break or control character"),
        (["--group", "a=writes \x1b[2J poems,b"], "line break or control character"),
        (["--group", "a b,c"], "agent name 'a b' must be"),
        (["--group", "a,b", "--group-file", "x"], "not both"),
        (["--group-file", str(tmp_path / "none.txt")], "cannot read --group-file"),
    ]
    for args, expected in cases:
        code, _, err = await _chat(tmp_path, "hi", *args)
        assert code == 1 and expected in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    roles = tmp_path / "roles.txt"
    roles.write_text("# the group\npoet: writes short poems\n\npoet: again\n")
    code, _, err = await _chat(tmp_path, "hi", "--group-file", str(roles))
    assert code == 1 and "two agents are named 'poet'" in err


def test_roles_become_each_agents_instructions(tmp_path: Path) -> None:
    roles = parse_group("poet=writes short poems, with rhyme, critic=finds one weakness,cy")
    assert roles == {
        "poet": "writes short poems, with rhyme",
        "critic": "finds one weakness",
        "cy": "",
    }
    file = tmp_path / "roles.txt"
    file.write_text("# who\npoet: writes short poems\ncritic = finds one weakness\n")
    assert read_group_file(str(file)) == {
        "poet": "writes short poems",
        "critic": "finds one weakness",
    }


async def test_chat_and_group_chat_refuse_bad_options_and_empty_input_alike(
    tmp_path: Path,
) -> None:
    """Both start the same way: a clear error and exit status 2 before any model is opened."""
    home = tmp_path / "home"
    for mode in ([], ["--group", "ann,bob"], ["--group", "poet=writes poems, critic=judges"]):
        code, _, err = await _chat(home, "hi", *mode, "--max-tokens", "2048")
        assert code == 2 and "--max-tokens (2048) must be positive and smaller" in err, err
        code, _, err = await _chat(home, "  \n", *mode)
        assert code == 2 and "nothing to send: stdin was empty" in err, err
    assert not home.exists() or not any(home.rglob("*.json"))


def test_interactive_group_chat_labels_each_agent(tmp_path: Path, local_model_path: Path) -> None:
    child, _ = spawn_group(tmp_path, *ARGS, "--group", "ann,bob,cy")
    child.sendline("/help")  # a command, never a message to the agents
    child.expect("you> ")
    assert "/switch ID" in str(child.before) and "[ann]" not in str(child.before)
    child.sendline("/history")
    child.expect("you> ")
    assert "(no messages yet)" in str(child.before)
    child.sendline("Hello.")
    child.expect("you> ")
    assert re.findall(r"\[(\w+)\] ", str(child.before)) == ["ann", "bob", "cy"]
    child.sendline("/history")
    child.expect("you> ")
    assert re.findall(r"\[\d+\] (\w+):", str(child.before)) == ["you", "ann", "bob", "cy"]
    child.sendline("/fork")
    child.expect(r"forked (group_[0-9a-f]+) -> (group_[0-9a-f]+); now on the fork")
    match = child.match
    assert isinstance(match, re.Match)
    first, fork = str(match.group(1)), str(match.group(2))
    child.expect("you> ")
    child.sendline("/threads")
    child.expect("you> ")
    listing = str(child.before)
    assert f"* {fork}" in listing and f"  {first}" in listing
    assert listing.count("[group: ann, bob, cy] Hello.") == 2
    child.sendline(f"/switch {first[:12]}")
    child.expect("you> ")
    assert f"switched to thread {first} (4 messages)" in str(child.before)
    child.sendline("/new")
    child.expect(r"new thread group_[0-9a-f]+")
    child.expect("you> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


async def _old_group_file(folder: Path) -> tuple[str, dict[str, object]]:
    """A group chat saved as an older threadline did: one JSON file, messages inline."""
    client = ScriptedChatClient(["Apple.", "Pear."])
    chat = GroupChat([ChatAgent(client, name="ann"), ChatAgent(client, name="bob")], max_rounds=2)
    thread = chat.get_new_thread()
    await chat.run("Name a fruit.", thread=thread)
    state = await thread.serialize()
    _write_json(folder / f"{thread.id}.json", state)
    return thread.id, state


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


async def test_old_group_files_move_into_the_library_once(
    tmp_path: Path, local_model_path: Path
) -> None:
    home = tmp_path / "home"
    groups = home / "groups"
    group_id, state = await _old_group_file(groups)
    crafted = dict(state, thread_id="../../escaped")
    _write_json(groups / "group_crafted.json", crafted)
    renamed = dict(state, thread_id="group_" + "1" * 24)
    _write_json(groups / "group_other.json", renamed)

    listed = _threads(home, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(e["thread_id"], e["kind"], e["messages"]) for e in entries] == [(group_id, "group", 3)]
    assert "moved 1 group chat(s)" in listed.stderr
    assert "group_crafted.json' was not imported" in listed.stderr
    assert "not a valid thread id" in listed.stderr
    assert "group_other.json' was not imported" in listed.stderr
    assert "not the one of its file name" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert not _named(tmp_path, "escaped")
    assert {p.name for p in _named(groups, "group_")} == {
        f"{group_id}.json.imported",
        "group_crafted.json",
        "group_other.json",
    }
    again = _threads(home, "list")
    assert "moved" not in again.stderr  # once

    code, out, err = await _chat(
        home, "Another.", "--no-memory", "--group", "ann,bob", "--thread", group_id
    )
    assert code == 0, err
    assert re.findall(r"^\[(\w+)\] ", out, flags=re.M) == ["ann", "bob"]
    assert _threads(home, "show", group_id).stdout.count("\n[") + 1 == 6


def test_ctrl_c_stops_a_group_turn_and_the_chat_resumes(
    tmp_path: Path, local_model_path: Path
) -> None:
    """The state saved after an interrupted turn matches the transcript: it resumes, not refused."""
    child, group_id = spawn_group(
        tmp_path, "--temperature", "0", "--max-tokens", "300", "--no-memory", "--group", "ann,bob"
    )
    child.sendline("Write a long story about a dragon who learns to fly.")
    child.expect(r"\[ann\] \W*\w+\W+\w+")  # ann is speaking: two words are out
    child.sendintr()
    child.expect(r"\[reply stopped; the thread is kept\]")
    child.expect("you> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "chat",
            *ARGS,
            "--no-memory",
            "--group",
            "ann,bob",
            "--thread",
            group_id,
        ],
        input="Shorter, please.\n",
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^\[(\w+)\] ", result.stdout, flags=re.M) == ["ann", "bob"]
    shown = _threads(tmp_path, "show", group_id).stdout
    assert "you: Write a long story" in shown and "you: Shorter, please." in shown


async def test_one_corrupt_state_row_hides_no_group(tmp_path: Path) -> None:
    """A state record that is not JSON is named on resume; the listing still knows the groups."""
    home = tmp_path / "home"
    group_id, _ = await _old_group_file(home / "groups")
    chat_file = tmp_path / "chat.json"
    thread = ChatAgent(ScriptedChatClient([])).get_new_thread()
    await thread.message_store.add_messages([ChatMessage(Role.USER, "hello")])  # type: ignore[union-attr]
    _write_json(chat_file, await portable_thread_state(thread))
    imported = _threads(home, "import", str(chat_file))
    assert imported.returncode == 0, imported.stderr
    _corrupt_state(home, thread.id)

    listed = _threads(home, "list", "--json")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    kinds = {e["thread_id"]: e["kind"] for e in map(json.loads, listed.stdout.splitlines())}
    assert kinds == {group_id: "group", thread.id: "chat"}  # participants stay hidden


def _corrupt_state(home: Path, thread_id: str) -> None:
    with sqlite3.connect(home / "threads.db") as conn:
        conn.execute("UPDATE threadline_records SET body = '{not json' WHERE id = ?", (thread_id,))


async def test_each_agent_of_a_long_group_chat_is_compacted_by_default(
    tmp_path: Path, local_model_path: Path
) -> None:
    # A 384-token window fills in a few rounds: each participant's own thread gets a stored
    # summary (compaction is on by default), and nothing it replaces is lost.
    child, group_id = spawn_group(
        tmp_path,
        *("--temperature", "0", "--max-tokens", "8", "--ctx", "384", "--no-memory"),
        *("--group", "ann,bob"),
    )
    lines = ["My name is Alice and I live in Lyon."] + [
        f"Tell me one fact about {topic}, in simple words for a beginner, please."
        for topic in ["tea", "owls", "rivers", "bread", "glass", "chess", "trains", "salt"]
    ]
    for line in lines:
        child.sendline(line)
        child.expect("you> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    library = ThreadLibrary(tmp_path)
    for name in ["ann", "bob"]:
        stored = await library.messages(participant_thread_id(group_id, name))
        summaries = [m for m in stored if summary_mark(m) is not None]
        assert summaries, f"{name}'s thread was never compacted"
        # Every message the summaries stand for is still stored (the others' turns too).
        assert [m.text for m in stored if m.text in lines] == lines
        assert len([m for m in stored if summary_mark(m) is None]) == len(lines) * 3
        assert "Lyon" in summaries[-1].text, summaries[-1].text
