"""Group chats an older threadline saved as ``$THREADLINE_HOME/groups/<id>.json``: moved in once.

Those files held a whole ``MultiAgentThread.serialize()`` state with in-memory stores (the
messages inline). On the library's first open each is checked like any foreign state (the
runner's pydantic model, every message, the id rule; the file's name must be its id, so a crafted
``thread_id`` never chooses where anything goes), then its transcript and participants' messages
are written as the library's threads (``<id>`` and ``<id>.<name>``) with the state record, in one
transaction. The file is then renamed ``<id>.json.imported``; a file that fails is left as it is
and named in a warning, once per run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from threadline.cli._library import STATE_KIND, ThreadLibrary
from threadline.cli._text import printable
from threadline.exceptions import ThreadlineError, ThreadStateError
from threadline.multiagent.thread import parse_group_state, participant_thread_id
from threadline.threads.state import parse_thread_state
from threadline.threads.stores.memory import messages_from_state
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.types.messages import ChatMessage

__all__ = ["adopt_legacy_groups", "import_legacy_groups"]

MAX_FILE = 64 * 1024 * 1024


def _memory_messages(kind: str | None, state: object, where: str) -> list[ChatMessage]:
    """The messages of an in-memory store's state (the only kind an old file holds)."""
    if kind != "memory" or not isinstance(state, Mapping):
        raise ThreadStateError(f"{where} is not kept in the file (store kind {kind!r})")
    inner: Mapping[str, object] = cast(Mapping[str, object], state)
    return messages_from_state(inner.get("messages", []), where=f"{where}.messages")


def _load(path: Path) -> object:
    """The file's JSON, read no further than :data:`MAX_FILE` bytes."""
    with path.open("rb") as f:
        raw = f.read(MAX_FILE + 1)
    if len(raw) > MAX_FILE:
        raise ThreadStateError(f"larger than {MAX_FILE} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ThreadStateError(f"not a JSON file ({exc})") from None


async def _import_one(library: ThreadLibrary, path: Path) -> str:
    loaded = await asyncio.to_thread(_load, path)
    parsed = parse_group_state(loaded, kind="group_chat")
    group_id = parsed.thread_id
    if path.name != f"{group_id}.json":
        raise ThreadStateError(f"it names group chat {group_id!r}, not the one of its file name")
    if await library.exists(group_id):
        raise ThreadStateError(f"group chat {group_id!r} is already in the library")
    path_text = str(library.db)
    transcript = _memory_messages(parsed.transcript.kind, parsed.transcript.state, "transcript")
    batch = ThreadBatch().append(group_id, transcript, expected_version=0)
    state: dict[str, Any] = json.loads(json.dumps(loaded))  # a plain copy to rewrite
    state["schema_version"] = 2
    state.pop("manager_state", None)
    state["runner_state"] = parsed.runner_state
    state["transcript"] = {"kind": "sqlite", "state": {"path": path_text, "thread_id": group_id}}
    participants: dict[str, Any] = {}
    for name, own_state in parsed.participants.items():
        own = parse_thread_state(own_state)
        pid = participant_thread_id(group_id, name)
        messages = _memory_messages(own.store_kind, own.store_state, f"participants.{name}")
        batch.append(pid, messages, expected_version=0)
        participants[name] = {
            **own_state,
            "thread_id": pid,
            "store": {"kind": "sqlite", "state": {"path": path_text, "thread_id": pid}},
        }
    state["participants"] = participants
    record = ThreadRecord(kind=STATE_KIND, id=group_id, thread_id=group_id, body=state)
    await library.database.commit(batch.put(record))
    return group_id


async def import_legacy_groups(library: ThreadLibrary) -> tuple[list[str], list[str]]:
    """Move ``groups/*.json`` into the library; returns (imported ids, warnings)."""
    folder = library.home / "groups"
    if not folder.is_dir():
        return [], []
    imported: list[str] = []
    warnings: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            imported.append(await _import_one(library, path))
        except (ThreadlineError, ValueError, OSError) as exc:
            warnings.append(f"group chat file {str(path)!r} was not imported: {exc}")
            continue
        path.rename(path.with_name(path.name + ".imported"))
    return imported, warnings


async def adopt_legacy_groups(library: ThreadLibrary) -> None:
    """Import old group chat files, saying on stderr what was imported and what was not."""
    imported, warnings = await import_legacy_groups(library)
    if imported:
        print(
            f"threadline: moved {len(imported)} group chat(s) from {str(library.home / 'groups')!r}"
            f" into {str(library.db)!r}",
            file=sys.stderr,
        )
    for warning in warnings:
        print(f"threadline: warning: {printable(warning, multiline=False)}", file=sys.stderr)
