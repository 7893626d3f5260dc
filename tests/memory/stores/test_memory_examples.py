"""The memory store example runs and prints what it promises."""

from __future__ import annotations

from pathlib import Path

from tests.test_examples import run_example

EXAMPLE = Path(__file__).parents[3] / "examples" / "memory" / "memory_store.py"


async def test_memory_store_example() -> None:
    out = await run_example(EXAMPLE)
    assert "2024-03-14 'user: We hiked up to the glacier lagoon in Iceland!'" in out
    assert "['I am vegan now']" in out
    assert "forgot 3 memories of ada" in out
    assert out.rstrip().endswith("['I am vegetarian']")
