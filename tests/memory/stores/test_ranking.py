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
    lexical = [("a", 9.0), ("b", 1.0)]
    vector = [("b", 0.9), ("a", 0.1)]
    lexical_first = fuse(
        lexical=lexical,
        vector=vector,
        when=when,
        window=None,
        fusion=Fusion(lexical_weight=1.0, vector_weight=0.5),
    )
    assert [m for m, _ in lexical_first] == ["a", "b"]
    vector_first = Fusion(lexical_weight=0.5, vector_weight=1.0)
    ranked = fuse(lexical=lexical, vector=vector, when=when, window=None, fusion=vector_first)
    assert [m for m, _ in ranked] == ["b", "a"]


def test_a_list_speaks_in_proportion_to_how_sure_it_is() -> None:
    # Scores are standardised within each list, not ranked: vectors that spread evenly (no
    # candidate stands out) cannot outvote a clear BM25 winner at 1.5 times its weight, while a
    # vector that stands out as clearly does.
    ids = [f"m{i}" for i in range(10)]
    when = dict.fromkeys(ids, OLD)
    lexical = [("m0", 20.0), *((m, 2.0) for m in ids[1:])]
    flat_vectors = [(m, 0.50 - i * 0.001) for i, m in enumerate(reversed(ids))]
    fusion = Fusion(lexical_weight=1.0, vector_weight=1.5, recency_weight=0.0)
    ranked = fuse(lexical=lexical, vector=flat_vectors, when=when, window=None, fusion=fusion)
    assert ranked[0][0] == "m0"
    sure_vectors = [("m5", 0.9), *((m, 0.2) for m in ids if m != "m5")]
    ranked = fuse(lexical=lexical, vector=sure_vectors, when=when, window=None, fusion=fusion)
    assert ranked[0][0] == "m5"


def test_recency_breaks_ties_and_period_wins() -> None:
    when = {"old": OLD, "new": NEW}
    ranked = fuse(
        lexical=[("old", 1.0)],
        vector=[("new", 0.5)],
        when=when,
        window=None,
        fusion=Fusion(lexical_weight=1.0, vector_weight=1.0),
    )
    assert [m for m, _ in ranked] == ["new", "old"]
    january = TimeWindow(OLD, datetime(2024, 2, 1, tzinfo=UTC))
    others = {f"x{i}": NEW for i in range(5)}
    lexical = [("new", 1.15), ("old", 1.1), *((m, 1.0) for m in others)]
    ranked = fuse(lexical=lexical, vector=[], when=when | others, window=january, fusion=Fusion())
    assert ranked[0][0] == "old"  # a little less relevant, but in the period the query names


def test_candidates_without_evidence_stay_out() -> None:
    when = {"found": OLD, "recent-only": NEW}
    ranked = fuse(lexical=[("found", 1.0)], vector=[], when=when, window=None, fusion=Fusion())
    assert [m for m, _ in ranked] == ["found"]


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="vector_weight"):
        Fusion(vector_weight=-1)
    with pytest.raises(ValueError, match="k must"):
        Fusion(k=float("nan"))
    with pytest.raises(ValueError, match="assistant_weight"):
        Fusion(assistant_weight=0)


def test_near_copies_make_room_for_other_evidence() -> None:
    from threadline.memory.records import MemoryHit, MemoryRecord, MemoryScope

    scope = MemoryScope(user_id="u")

    def hit(ids: tuple[str, ...], score: float, thread: str = "t1") -> MemoryHit:
        record = MemoryRecord(kind="turn", text="x", scope=scope, thread_id=thread, message_ids=ids)
        return MemoryHit(record=record, score=score)

    first, copy, other = hit(("m1", "m2"), 0.9), hit(("m2", "m3"), 0.8), hit(("m9",), 0.5, "t2")
    halving = Fusion(repeat_penalty=0.5)
    ranked = diversify([first, copy, other], halving)
    assert [h.message_ids for h in ranked] == [("m1", "m2"), ("m9",), ("m2", "m3")]
    assert abs(ranked[2].score - 0.4) < 1e-9
    elsewhere = hit(("m2",), 0.7, "t3")  # same id in another thread is not a copy
    assert [h.score for h in diversify([first, elsewhere], halving)] == [0.9, 0.7]
    # The default penalty is mild: the continuation of a passage stays near it.
    assert [h.message_ids for h in diversify([first, copy, other])][1] == ("m2", "m3")


def test_a_past_assistant_reply_counts_less_than_the_users_words() -> None:
    from threadline.memory.records import MemoryHit, MemoryRecord, MemoryScope

    scope = MemoryScope(user_id="u")

    def hit(mid: str, role: str, score: float) -> MemoryHit:
        record = MemoryRecord(
            kind="turn",
            text="x",
            scope=scope,
            thread_id=mid,
            message_ids=(mid,),
            metadata={"role": role},
        )
        return MemoryHit(record=record, score=score)

    reply, said = hit("a1", "assistant", 1.0), hit("u1", "user", 0.9)
    assert [h.id for h in diversify([reply, said])] == [said.id, reply.id]
    assert [h.id for h in diversify([reply, said], Fusion(assistant_weight=1.0))] == [
        reply.id,
        said.id,
    ]


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
