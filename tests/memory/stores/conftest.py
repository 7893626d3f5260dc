from __future__ import annotations

from collections.abc import Iterator

import pytest

from threadline.memory.embedders import MiniLMEmbedder


@pytest.fixture(scope="session")
def minilm() -> Iterator[MiniLMEmbedder]:
    """The real local embedder (the memory extra is part of the test extra), loaded once."""
    embedder = MiniLMEmbedder()
    embedder.load()
    yield embedder
    embedder.close()
