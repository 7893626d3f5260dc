"""``threadline threads ...`` in-process on a real SQLite file (no model needed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from threadline import AgentThread, ChatAgent, ScriptedChatClient
from threadline.cli.main import main
from threadline.threads.portable import portable_thread_state
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types import ChatMessage, FunctionCallContent, FunctionResultContent, Role

MESSAGES = [
    ChatMessage(Role.USER, "What's the weather in Oslo?"),
    ChatMessage(
        Role.ASSISTANT,
        contents=[FunctionCallContent(call_id="c1", name="weather", arguments='{"city": "Oslo"}')],
    ),
    ChatMessage(Role.TOOL, contents=[FunctionResultContent(call_id="c1", result={"sky": "grey"})]),
    ChatMessage(Role.ASSISTANT, "Grey skies in Oslo — bring a coat."),
]


def run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    return code, out, err


def saved_thread(home: Path, thread_id: str = "thread_oslo") -> str:
    async def save() -> None:
        store = SQLiteChatMessageStore(home / "threads.db", thread_id=thread_id)
        await store.add_messages(MESSAGES, expected_version=0)

    asyncio.run(save())
    return thread_id


def listing(home: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, _ = run(home, capsys, "threads", "list", "--json")
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_list_show_fork_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, capsys, "threads", "list")[1].strip() == "(no saved threads)"
    assert not (tmp_path / "threads.db").exists()  # listing creates nothing
    thread_id = saved_thread(tmp_path)
    [entry] = listing(tmp_path, capsys)
    assert entry["thread_id"] == thread_id and entry["messages"] == 4
    assert entry["title"] == "What's the weather in Oslo?"

    code, out, _ = run(tmp_path, capsys, "threads", "show", "thread_os")  # a unique prefix
    assert code == 0
    assert out.splitlines() == [
        "[1] you: What's the weather in Oslo?",
        '[2] assistant: [calls weather({"city": "Oslo"})]',
        '[3] tool: [call c1 returned {"sky": "grey"}]',
        "[4] assistant: Grey skies in Oslo — bring a coat.",
    ]

    code, out, _ = run(tmp_path, capsys, "threads", "fork", thread_id)
    fork_id = out.strip()
    assert code == 0 and fork_id.startswith("thread_") and fork_id != thread_id
    code, out, _ = run(tmp_path, capsys, "threads", "delete", thread_id)
    assert code == 0 and thread_id in out
    [entry] = listing(tmp_path, capsys)
    assert entry["thread_id"] == fork_id and entry["messages"] == 4  # the fork kept its history
    assert run(tmp_path, capsys, "threads", "show", fork_id)[1].count("\n") == 4


def test_export_import_round_trip_through_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    thread_id = saved_thread(source)
    exported = tmp_path / "oslo.json"
    code, _, err = run(source, capsys, "threads", "export", thread_id, "-o", str(exported))
    assert code == 0 and "exported" in err
    state = json.loads(exported.read_text(encoding="utf-8"))
    assert state["thread_id"] == thread_id
    assert state["store"]["kind"] == "memory"  # the messages travel in the file
    assert [m["message_id"] for m in state["store"]["state"]["messages"]] == [
        m.message_id for m in MESSAGES
    ]

    code, out, _ = run(target, capsys, "threads", "import", str(exported))
    assert code == 0 and f"imported thread {thread_id} (4 messages)" in out

    async def read() -> list[ChatMessage]:
        return await SQLiteChatMessageStore(target / "threads.db", thread_id).list_messages()

    assert asyncio.run(read()) == MESSAGES  # exactly what was exported, ids included
    again = tmp_path / "again.json"
    run(target, capsys, "threads", "export", thread_id, "-o", str(again))
    assert json.loads(again.read_text(encoding="utf-8")) == state

    # Importing it a second time is refused; --new-id saves a copy beside it.
    code, _, err = run(target, capsys, "threads", "import", str(exported))
    assert code == 1 and "already saved" in err and "--new-id" in err
    code, out, _ = run(target, capsys, "threads", "import", "--new-id", str(exported))
    assert code == 0
    assert len(listing(target, capsys)) == 2


async def test_exported_file_restores_in_any_agent(tmp_path: Path) -> None:
    store = SQLiteChatMessageStore(tmp_path / "t.db", thread_id="thread_x")
    await store.add_messages(MESSAGES)
    state = await portable_thread_state(AgentThread(message_store=store, thread_id="thread_x"))
    # An agent with the default in-memory store, elsewhere: no database needed.
    thread = await ChatAgent(ScriptedChatClient([])).deserialize_thread(
        json.loads(json.dumps(state))
    )
    assert thread.id == "thread_x" and thread.message_store is not None
    assert await thread.message_store.list_messages() == MESSAGES


def _corrupt_files() -> dict[str, str]:
    good = {
        "type": "threadline.thread",
        "schema_version": 1,
        "thread_id": "thread_new",
        "binding": {},
        "store": {"kind": "memory", "state": {"messages": [m.to_dict() for m in MESSAGES]}},
    }
    truncated = json.dumps(good)[:-40]
    bad_role = json.loads(json.dumps(good))
    bad_role["store"]["state"]["messages"][2]["role"] = "wizard"
    duplicate_ids = json.loads(json.dumps(good))
    duplicate_ids["store"]["state"]["messages"][1]["message_id"] = MESSAGES[0].message_id
    reference = dict(good, store={"kind": "sqlite", "state": {"path": "/x.db", "thread_id": "t"}})
    service = dict(good, binding={"service": "openai"}, service_thread_id="conv_1")
    del service["store"]
    return {
        "truncated": truncated,
        "not a thread": json.dumps({"hello": "world"}),
        "future version": json.dumps(dict(good, schema_version=99)),
        "bad role": json.dumps(bad_role),
        "duplicate ids": json.dumps(duplicate_ids),
        "reference only": json.dumps(reference),
        "service thread": json.dumps(service),
        "binary": "\x00\x01garbage",
    }


@pytest.mark.parametrize("case", sorted(_corrupt_files()))
def test_corrupted_import_fails_cleanly_and_changes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_thread(tmp_path)
    before = listing(tmp_path, capsys)
    db_bytes = (tmp_path / "threads.db").stat().st_size
    bad = tmp_path / "bad.json"
    bad.write_text(_corrupt_files()[case], encoding="utf-8")

    code, out, err = run(tmp_path, capsys, "threads", "import", str(bad))

    assert code == 1
    assert err.startswith("threadline: error: ") and "Traceback" not in err
    assert str(bad) in err  # says which file
    assert out == ""
    assert listing(tmp_path, capsys) == before
    assert (tmp_path / "threads.db").stat().st_size == db_bytes


def test_corrupted_import_into_an_empty_home_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    code, _, err = run(tmp_path / "home", capsys, "threads", "import", str(bad))
    assert code == 1 and "invalid JSON" in err
    assert not (tmp_path / "home").exists()


def test_unknown_id_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved_thread(tmp_path, "thread_aa1")
    saved_thread(tmp_path, "thread_aa2")
    code, _, err = run(tmp_path, capsys, "threads", "show", "thread_zz")
    assert code == 1 and "no saved thread 'thread_zz'" in err
    code, _, err = run(tmp_path, capsys, "threads", "delete", "thread_aa")
    assert code == 1 and "matches 2 threads" in err
    assert len(listing(tmp_path, capsys)) == 2


def test_show_marks_a_summary_and_keeps_what_it_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from threadline import CompactionContent, TextContent

    thread_id = saved_thread(tmp_path)
    summary = ChatMessage(
        Role.SYSTEM,
        contents=[
            TextContent("Summary of the earlier conversation:\nOslo weather was asked about."),
            CompactionContent(replaces=tuple(m.message_id for m in MESSAGES), method="model"),
        ],
    )

    async def compact() -> None:
        store = SQLiteChatMessageStore(tmp_path / "threads.db", thread_id=thread_id)
        await store.add_messages([summary], expected_version=4)

    asyncio.run(compact())
    code, out, _ = run(tmp_path, capsys, "threads", "show", thread_id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "[1] you: What's the weather in Oslo?"
    assert lines[4] == (
        "[5] system: [summary of 4 earlier messages] Summary of the earlier conversation:"
    )
    assert lines[5] == "Oslo weather was asked about."
