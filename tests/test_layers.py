"""Imports point down the layers of docs/DESIGN, and no package imports another's private module.

Type-only imports (under ``TYPE_CHECKING``) count too: a layer that names an upper one in its
annotations depends on it just the same. The few deliberate exceptions are listed with their reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import threadline

SRC = Path(threadline.__file__).parent

LAYERS: dict[str, int] = {
    "exceptions": 0,
    "closing": 0,
    "_utils": 0,
    "_tracing": 0,
    "_tracing_setup": 1,
    "types": 1,
    "_sqlite": 1,
    "_postgres": 1,
    "tools": 2,
    "history": 2,
    "openai_wire": 3,
    "mcp": 3,
    "clients": 4,
    "threads": 4,
    "memory": 5,
    "compaction": 5,
    "agents": 6,
    "multiagent": 7,
    "testing": 7,
    "ui": 7,
    "hosting": 8,
    "cli": 9,
}
"""Each top-level module or package of ``threadline`` and its layer: a module imports lower ones.

``memory`` sits above ``threads`` because a context provider is handed the thread whose state it
keeps; ``threads`` reaches its providers and forking clients through protocols of its own.
``mcp`` (tools from MCP servers) is a tool source: it builds ``FunctionTool`` s (layer 2) from a
wire protocol, like ``openai_wire``; agents reach it through the ``ToolSource`` protocol of
``tools``, so it needs nothing above.
``compaction`` (summaries of old turns) sits above ``history`` and ``clients``: it asks a model
for the summary; ``agents`` call it when a turn begins.
``testing`` sits above ``agents`` because the store kit runs real agent turns against a store.
``ui`` (the web UI's pages and JSON API) reads threads and memories through a ``UiSource``
protocol of its own; ``hosting`` and ``cli`` plug their data into it, so it needs nothing above.
"""

ALLOWED = {
    # AgentRunResponse.thread is annotated with the thread to continue; type-only, the value is
    # created by the agent.
    ("types/responses.py", "threadline.threads.thread"),
}
"""(module, import) pairs that break the rule on purpose, each for the reason given."""


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.startswith("threadline.")]


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    rel = path.relative_to(SRC)
    own = rel.parts[0].removesuffix(".py")
    assert own in LAYERS, f"{own} has no layer: add it to LAYERS (and to DESIGN.md)"
    for module in _imports(path):
        parts = module.split(".")
        target = parts[1]
        if target == own or (rel.as_posix(), module) in ALLOWED:
            continue
        assert target in LAYERS, f"{rel} imports {module}, which has no layer"
        assert LAYERS[target] < LAYERS[own], (
            f"{rel} (layer {own}) imports {module} (layer {target}): imports must point down"
        )
        assert not any(p.startswith("_") for p in parts[2:]), (
            f"{rel} imports {module}, a private module of another package"
        )
