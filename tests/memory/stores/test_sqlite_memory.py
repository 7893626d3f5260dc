"""SQLite-specific promises: where the file lives, and that forgetting leaves no trace in it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from threadline.exceptions import UsageError
from threadline.memory.embedders import MiniLMEmbedder
from threadline.memory.records import ForgetResult, MemoryRecord, MemoryScope
from threadline.memory.stores import SQLiteMemoryStore

ALICE = MemoryScope(user_id="alice")
BOB = MemoryScope(user_id="bob")


async def test_default_file_is_under_threadline_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_HOME", str(tmp_path / "home"))
    store = SQLiteMemoryStore()
    try:
        await store.add([MemoryRecord(kind="fact", text="likes tea", scope=ALICE)])
    finally:
        await store.aclose()
    assert store.path == str(tmp_path / "home" / "memory.sqlite3")
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


async def test_forget_leaves_no_bytes_of_the_user_in_the_file(tmp_path: Path) -> None:
    """Not only unfindable: the words are gone from the index segments and freed pages."""
    path = tmp_path / "memory.db"
    store = SQLiteMemoryStore(path)
    secret = "xylophonequasar"
    try:
        await store.add(
            [
                MemoryRecord(kind="fact", text=f"alice's codeword is {secret} {i}", scope=ALICE)
                for i in range(50)
            ]
            + [MemoryRecord(kind="fact", text="bob's codeword is marigold", scope=BOB)]
        )
        assert await store.forget(user_id="alice") == ForgetResult(records=50, purged=True)
        assert [h.text for h in await store.search("codeword", scope=BOB)] == [
            "bob's codeword is marigold"
        ]
    finally:
        await store.aclose()
    wal = Path(f"{path}-wal")
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")  # noqa: ASYNC240
    assert secret.encode() not in data
    assert b"alice" not in data
    assert b"marigold" in data


async def test_forget_with_another_reader_says_the_words_are_still_on_disk(
    tmp_path: Path,
) -> None:
    """A reader holding the file open keeps the old pages in the -wal file: forget must say so,
    and a forget once the reader has finished purges them."""
    path = tmp_path / "memory.db"
    store = SQLiteMemoryStore(path, embedder=None)
    secret = "xylophonequasar"
    await store.add([MemoryRecord(kind="fact", text=f"codeword {secret}", scope=ALICE)])
    reader = sqlite3.connect(path, isolation_level=None)  # another process, say a backup
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM memories").fetchone() == (1,)
        result = await store.forget(user_id="alice")
        assert result.records == 1 and not result.purged
        assert f"{path}-wal" in result.remaining and "run forget again" in result.remaining
        on_disk = path.read_bytes() + Path(f"{path}-wal").read_bytes()  # noqa: ASYNC240
        assert secret.encode() in on_disk  # what the result says is true
        assert await store.search(secret, scope=ALICE) == []  # though no query reaches it
    finally:
        reader.close()
    assert await store.forget(user_id="alice") == ForgetResult(records=0, purged=True)
    await store.aclose()
    wal = Path(f"{path}-wal")
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")  # noqa: ASYNC240
    assert secret.encode() not in data


async def test_lexical_only_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.memory import _notice

    monkeypatch.setattr(_notice, "_said", False)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        first, second = SQLiteMemoryStore(tmp_path / "a.db"), SQLiteMemoryStore(tmp_path / "b.db")
    await first.aclose()
    await second.aclose()
    notes = [r.getMessage() for r in caplog.records if "lexical only" in r.getMessage()]
    assert len(notes) == 1
    # Made in code without an embedder: the programmer is told what to pass.
    assert "embedder=threadline.memory.default_embedder()" in notes[0]


def test_without_the_memory_extra_the_notice_says_what_to_install(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from threadline.memory import _notice
    from threadline.memory.embedders import default_embedder

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(_notice, "_said", False)

    def find_spec(name: str, package: str | None = None) -> object:
        # the extra's runtime "not installed", as on a plain install
        return None if name == "onnxruntime" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with caplog.at_level(logging.WARNING, logger="threadline.memory"):
        assert default_embedder() is None
    [note] = [r.getMessage() for r in caplog.records if "lexical only" in r.getMessage()]
    assert "onnxruntime not installed" in note
    assert "pip install 'threadline[memory]'" in note
    assert "embedder=" not in note  # commands open memory this way: no code advice for people


class LetterEmbedder:
    """A tiny real embedder (letter frequencies): how users bring their own."""

    def __init__(self, dimension: int = 26, *, broken: bool = False) -> None:
        self.dimension = dimension
        self.name = f"letters-{dimension}"
        self.broken = broken

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for text in texts:
            counts = [float(text.lower().count(chr(97 + i))) for i in range(self.dimension)]
            norm = sum(c * c for c in counts) ** 0.5 or 1.0
            out.append([c / norm for c in counts][: self.dimension - self.broken])
        return out


async def test_semantic_match_without_shared_words(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    store = SQLiteMemoryStore(tmp_path / "m.db", embedder=minilm)
    try:
        target = MemoryRecord(kind="preference", text="I am vegetarian", scope=ALICE)
        others = [
            MemoryRecord(kind="fact", text=text, scope=ALICE)
            for text in ("my car is a red hatchback", "I work as a nurse", "my cat is called Pixel")
        ]
        await store.add([target, *others])
        hits = await store.search("does she eat meat?", scope=ALICE)
        assert hits[0].id == target.id
        lexical = SQLiteMemoryStore(tmp_path / "m.db")  # same file, no embedder: BM25 only
        try:
            assert await lexical.search("does she eat meat?", scope=ALICE) == []
        finally:
            await lexical.aclose()
    finally:
        await store.aclose()


async def test_one_file_keeps_the_vectors_of_one_embedder(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = SQLiteMemoryStore(path, embedder=LetterEmbedder())
    await first.add([MemoryRecord(kind="fact", text="likes tea", scope=ALICE)])
    await first.aclose()
    other = SQLiteMemoryStore(path, embedder=LetterEmbedder(20))
    try:
        with pytest.raises(UsageError, match="letters-26.*open it with the embedder"):
            await other.search("tea", scope=ALICE)
    finally:
        await other.aclose()


async def test_an_embedder_breaking_its_promise_stores_nothing(tmp_path: Path) -> None:
    store = SQLiteMemoryStore(tmp_path / "m.db", embedder=LetterEmbedder(broken=True))
    try:
        with pytest.raises(UsageError, match="promised 26"):
            await store.add([MemoryRecord(kind="fact", text="likes tea", scope=ALICE)])
        assert await store.list(scope=ALICE) == []
    finally:
        await store.aclose()
