"""The README's code runs as written (docs that cannot rot)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


async def test_the_readme_example_runs_and_remembers() -> None:
    (block,) = python_blocks()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", block, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().splitlines() == ["Nice to meet you, Alice.", "You are Alice."]


def test_the_readme_commands_are_where_ci_reads_them() -> None:
    text = README.read_text()
    for marker in ("chat-command", "test-command"):
        section = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
        assert "```bash" in section, marker
    assert "threadline chat" in text.split("<!-- /chat-command -->", 1)[0]
    assert "python -m pytest" in text.split("<!-- /test-command -->", 1)[0]


def test_docs_give_the_readmes_test_command() -> None:
    """Issue 21: docs/chat.md gave a different test command from README's (which CI runs)."""
    text = README.read_text()
    section = text.split("<!-- test-command -->", 1)[1].split("<!-- /test-command -->", 1)[0]
    command = section.split("```bash", 1)[1].split("```", 1)[0].strip()
    chat_doc = (README.parent / "docs" / "chat.md").read_text()
    assert command in chat_doc
    assert "pytest" not in chat_doc.replace(command, "")  # no second, different command
