"""Every Python block of docs/*.md and every script in examples/ runs (docs that cannot rot).

A doc block runs as a script in a fresh process and a temporary folder; top-level ``await`` is
allowed, as in an async REPL. Comments right above a block say what it needs:

* ``<!-- needs: local-model -->``: the embedded model (skips without it, fails under
  ``THREADLINE_REQUIRE_LOCAL_MODEL=1``);
* ``<!-- needs: server ... -->``: a threadline server on loopback, reached through
  ``OPENAI_BASE_URL`` (a scripted agent behind it);
* ``<!-- needs: postgres -->``: the PostgreSQL server of the test suite;
* ``<!-- not-run: reason -->``: a block not meant to run (a protocol's shape, a file of the reader's
  own project). They are counted, so a block cannot silently stop running.

Examples run as scripts too; those with output worth checking list it in ``EXPECTED``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import threadline
from tests.hosting.conftest import start_server
from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
SRC = str(Path(threadline.__file__).resolve().parents[1])

NOT_RUN = {"stores.md": 2, "tools.md": 1}
"""How many blocks each doc marks ``not-run``: changing it is a decision, not an accident."""

_BLOCK = re.compile(
    r"(?P<marks>(?:<!-- (?:needs|not-run): [^\n]*-->\n)*)```python\n(?P<code>.*?)```", re.S
)
_MARK = re.compile(r"<!-- (needs|not-run): ([^\n]*?) -->")

_HARNESS = """
import ast, asyncio, inspect, sys
source = sys.stdin.read()
code = compile(source, "<doc block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__"}
if code.co_flags & inspect.CO_COROUTINE:
    asyncio.run(eval(code, namespace))
else:
    exec(code, namespace)
"""
"""Runs a block read from stdin, awaiting it when it uses top-level ``await``."""


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    code: str
    needs: tuple[str, ...]
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def doc_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            marks = _MARK.findall(match.group("marks"))
            blocks.append(
                Block(
                    doc=path.name,
                    line=text.count("\n", 0, match.start("code")),
                    code=match.group("code"),
                    needs=tuple(value.split()[0] for kind, value in marks if kind == "needs"),
                    not_run=next((value for kind, value in marks if kind == "not-run"), None),
                )
            )
    return blocks


def test_blocks_not_meant_to_run_are_marked_and_counted() -> None:
    counted: dict[str, int] = {}
    for block in doc_blocks():
        if block.not_run is not None:
            assert block.not_run.strip(), f"{block.id}: say why the block does not run"
            counted[block.doc] = counted.get(block.doc, 0) + 1
    assert counted == NOT_RUN
    # A ```python block hidden from the pattern (say, indented) would escape the test.
    for path in (ROOT / "docs").glob("*.md"):
        text = path.read_text(encoding="utf-8")
        assert text.count("```python") == len([b for b in doc_blocks() if b.doc == path.name])


async def run_python(
    args: list[str], *, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": SRC, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})},
        stdin=subprocess.PIPE if stdin is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), timeout=300
    )
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize(
    "block", [b for b in doc_blocks() if b.not_run is None], ids=lambda b: b.id
)
async def test_doc_block_runs(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env: dict[str, str] = {}
    for need in block.needs:
        if need == "local-model":
            request.getfixturevalue("local_model_path")
        elif need == "postgres":
            request.getfixturevalue("postgres_url")
        else:
            assert need == "server", f"{block.id}: unknown need {need!r}"
    if "server" not in block.needs:
        await run_python(["-c", _HARNESS], cwd=tmp_path, stdin=block.code, env=env)
        return
    model = ScriptedChatClient(["Nice to meet you, Alice.", "You are Alice."])
    config = ServerConfig(api_keys={"doc-key": "doc"}, db_path=str(tmp_path / "server.db"))
    server, task, url = await start_server(ChatAgent(model), config)
    try:
        env = {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "doc-key"}
        out = await run_python(["-c", _HARNESS], cwd=tmp_path, stdin=block.code, env=env)
    finally:
        server.should_exit = True
        await task
    assert "You are Alice." in out
    model.assert_all_replies_used()


EXPECTED: dict[str, list[str]] = {
    "threads/multi_turn.py": ["Agent: We talked about your name."],
    "threads/fork_and_tools.py": ["branch: Then stay inside and read."],
    "tools/approve_a_call.py": ["Agent: I emailed Bob.", "outbox: ['bob@example.com']"],
    "server/host_an_agent.py": ["Hello Ada!", "Your name is Ada."],
    "server/conversations_are_threads.py": ["user: I like tea.", "assistant: You like tea."],
    "openai/service_managed_threads.py": ["Noted: you like tea.", "You like tea.", "Hi!"],
    "stores/encrypted_sqlite.py": [
        "Agent: Your PIN is 4321.",
        "PIN visible in the database file: False",
        "newest messages within 20 tokens: ['What is my PIN?', 'Your PIN is 4321.']",
        "encrypted with a different master key",
    ],
    "stores/shared_servers.py": ["redis: Agent: You are Alice.", "postgres: fork holds 4 messages"],
    "memory/memory_store.py": [
        "2024-03-14 'user: We hiked up to the glacier lagoon in Iceland!'",
        "['I am vegan now']",
        "forgot 3 memories of ada",
        "['I am vegetarian']",
    ],
}
"""Lines (or parts of lines) an example must print; every other example must just run."""

FORBIDDEN: dict[str, list[str]] = {"stores/shared_servers.py": ["password", "postgresql://"]}
"""What an example must never print (secrets from connection URLs)."""

NEEDS: dict[str, tuple[str, ...]] = {
    "chat/local_chat.py": ("local_model_path",),
    "stores/shared_servers.py": ("redis_url", "postgres_url"),
}
"""Fixtures an example needs: they skip (or fail in CI) when the part is missing."""


def examples() -> list[str]:
    return sorted(
        p.relative_to(ROOT / "examples").as_posix() for p in ROOT.glob("examples/**/*.py")
    )


def test_every_expectation_names_an_example() -> None:
    assert set(EXPECTED) | set(NEEDS) | set(FORBIDDEN) <= set(examples())


@pytest.mark.parametrize("name", examples())
async def test_example_runs(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for fixture in NEEDS.get(name, ()):
        request.getfixturevalue(fixture)
    env = {
        "TMPDIR": str(tmp_path),  # examples that keep files in the temp folder keep them apart
        "THREADLINE_REDIS_URL": os.environ.get("THREADLINE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "THREADLINE_POSTGRES_URL": os.environ.get(
            "THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    }
    out = await run_python([str(ROOT / "examples" / name)], cwd=tmp_path, env=env)
    for text in EXPECTED.get(name, []):
        assert text in out, f"{name} did not print {text!r}:\n{out}"
    for text in FORBIDDEN.get(name, []):
        assert text not in out, f"{name} printed {text!r}"
    if name == "chat/local_chat.py":
        assert re.search(r"^4 messages saved in thread thread_", out, flags=re.M), out


async def test_sqlite_example_resumes_across_processes(tmp_path: Path) -> None:
    script = str(ROOT / "examples" / "threads" / "sqlite_resume.py")
    first = await run_python([script, str(tmp_path)], cwd=tmp_path)
    second = await run_python([script, str(tmp_path)], cwd=tmp_path)
    assert "resumed" not in first
    assert "resumed a thread of 2 messages" in second
