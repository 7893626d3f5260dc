"""A snapshot of the public API: removing or renaming a public name, or changing the signature of
one the spec names, fails here.

The snapshot is ``tests/public_api.json``. New public names may be added freely (the check is that
every recorded name is still exported); to protect them too, or after an intended change, rewrite
the snapshot with ``PYTHONPATH=src python -m tests.test_public_api`` and review its diff.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
from pathlib import Path
from typing import Any

import threadline

SNAPSHOT = Path(__file__).with_name("public_api.json")

SPEC_NAMES = (
    # spec/multi-turn-threads.md and spec/agents-with-memory-adr.md, and what their samples call
    "ChatAgent",
    "AgentThread",
    "ChatMessageList",
    "ChatMessageStore",
    "ContextProvider",
    "Context",
    "ChatMessage",
    "Role",
    "AgentRunResponse",
    "AgentRunResponseUpdate",
    "ChatClient",
    "FunctionTool",
    "tool",
    "ScriptedChatClient",
)
"""Names whose signatures (constructor, public methods and properties) are recorded."""


def _signature(obj: Any) -> str:
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):  # builtins and enums without a signature
        return "(no signature)"
    # Defaults that are functions print their address, which differs from run to run.
    return re.sub(r" at 0x[0-9a-f]+>", ">", text)


def _describe(obj: Any) -> dict[str, str]:
    """The signatures of a function, or of a class and its own public members."""
    if not inspect.isclass(obj):
        return {"": _signature(obj)}
    described = {"": _signature(obj)}
    if issubclass(obj, enum.Enum):
        members: list[enum.Enum] = list(obj)
        described["members"] = ", ".join(f"{m.name}={m.value!r}" for m in members)
    for klass in reversed(obj.__mro__):
        if klass.__module__.split(".")[0] != "threadline":
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(member, property):
                described[name] = "property"
            elif isinstance(member, (classmethod, staticmethod)):
                described[name] = _signature(getattr(klass, name))
            elif inspect.isfunction(member):
                described[name] = _signature(member)
    return described


def current() -> dict[str, Any]:
    """The public API as it is now."""
    return {
        "all": sorted(threadline.__all__),
        "signatures": {name: _describe(getattr(threadline, name)) for name in SPEC_NAMES},
    }


def test_every_recorded_public_name_is_still_exported() -> None:
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    missing = sorted(set(recorded["all"]) - set(threadline.__all__))
    assert not missing, f"public names removed or renamed: {missing}"


def test_the_spec_names_keep_their_signatures() -> None:
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["signatures"]
    now = current()["signatures"]
    assert set(recorded) == set(SPEC_NAMES)
    for name in SPEC_NAMES:
        for member, signature in recorded[name].items():
            label = f"{name}.{member}" if member else name
            assert member in now[name], f"{label} was removed"
            assert now[name][member] == signature, f"{label} changed its signature"


def test_the_snapshot_sees_a_removed_member() -> None:
    # The check itself works: a class without one of its methods is reported.
    described = _describe(threadline.ChatAgent)
    assert "run" in described and "get_new_thread" in described
    assert described["run"].startswith("(self, messages")


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
