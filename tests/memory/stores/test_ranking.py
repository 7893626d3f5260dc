from __future__ import annotations

from datetime import UTC, datetime

import pytest

from threadline.memory._temporal import TimeWindow
from threadline.memory.stores import Fusion
from threadline.memory.stores._ranking import diversify, fts_terms, fuse

OLD, NEW = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)


def test_query_terms_drop_function_words() -> None:
    assert fts_terms("What did I tell you about my dog's name?") == ["dog", "name"]
    assert fts_terms("what was it?") == ["what", "was", "it"]  # nothing else left: keep them
    assert fts_terms("Zürich, 2024 — Zürich!") == ["zürich", "2024"]
    assert fts_terms("?!") == []


def test_weights_decide_between_lists() -> None:
    when = dict.fromkeys(["a", "b"], OLD)
    lexical_first = fuse(
        lexical=["a", "b"],
        vector=["b", "a"],
        when=when,
        window=None,
        fusion=Fusion(lexical_weight=1.0, vector_weight=0.5),
    )
    assert [m for m, _ in lexical_first] == ["a", "b"]
    vector_first = Fusion(lexical_weight=0.5, vector_weight=1.0)
    ranked = fuse(
        lexical=["a", "b"], vector=["b", "a"], when=when, window=None, fusion=vector_first
    )
    assert [m for m, _ in ranked] == ["b", "a"]


def test_recency_breaks_ties_and_period_wins() -> None:
    when = {"old": OLD, "new": NEW}
    ranked = fuse(
        lexical=["old"],
        vector=["new"],
        when=when,
        window=None,
        fusion=Fusion(lexical_weight=1.0, vector_weight=1.0),
    )
    assert [m for m, _ in ranked] == ["new", "old"]
    january = TimeWindow(OLD, datetime(2024, 2, 1, tzinfo=UTC))
    ranked = fuse(lexical=["new", "old"], vector=[], when=when, window=january, fusion=Fusion())
    assert ranked[0][0] == "old"


def test_candidates_without_evidence_stay_out() -> None:
    when = {"found": OLD, "recent-only": NEW}
    ranked = fuse(lexical=["found"], vector=[], when=when, window=None, fusion=Fusion())
    assert [m for m, _ in ranked] == ["found"]


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="vector_weight"):
        Fusion(vector_weight=-1)
    with pytest.raises(ValueError, match="k must"):
        Fusion(k=float("nan"))


def test_near_copies_make_room_for_other_evidence() -> None:
    from threadline.memory.records import MemoryHit, MemoryRecord, MemoryScope

    scope = MemoryScope(user_id="u")

    def hit(ids: tuple[str, ...], score: float, thread: str = "t1") -> MemoryHit:
        record = MemoryRecord(kind="turn", text="x", scope=scope, thread_id=thread, message_ids=ids)
        return MemoryHit(record=record, score=score)

    first, copy, other = hit(("m1", "m2"), 0.9), hit(("m2", "m3"), 0.8), hit(("m9",), 0.5, "t2")
    ranked = diversify([first, copy, other])
    assert [h.message_ids for h in ranked] == [("m1", "m2"), ("m9",), ("m2", "m3")]
    assert abs(ranked[2].score - 0.4) < 1e-9
    elsewhere = hit(("m2",), 0.7, "t3")  # same id in another thread is not a copy
    assert [h.score for h in diversify([first, elsewhere])] == [0.9, 0.7]


def test_a_repeated_line_cannot_fill_every_slot() -> None:
    import numpy as np

    from threadline.memory.stores._common import demote_similar

    def blob(*values: float) -> bytes:
        vector = np.asarray(values, dtype=np.float32)
        return (vector / np.linalg.norm(vector)).tobytes()

    pool = {
        "copy1": blob(1, 0, 0),
        "copy2": blob(1, 0.05, 0),
        "copy3": blob(1, 0, 0.05),
        "answer": blob(0, 1, 0),
    }
    ranked = [("copy1", 0.05), ("copy2", 0.045), ("copy3", 0.04), ("answer", 0.03)]
    out = demote_similar(ranked, pool, 3, 0.85)
    assert [m for m, _ in out] == ["copy1", "answer", "copy2", "copy3"]
    assert demote_similar(ranked, pool, 3, 1.0 + 1e-9) == ranked  # nothing that close
