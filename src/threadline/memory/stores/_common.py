"""What every memory store checks and shares: input validation, scope filters, vectors.

Validation happens before any SQL so a bad record is refused whole, with a message naming the
problem and the fix, and nothing of the batch is stored. Scope filters are written once here so
SQLite and PostgreSQL cannot drift apart on who may see what:

* the user always matches exactly (there is no "all users" read);
* a scope with ``agent_id`` (``app_id``) sees that agent's (app's) records and the user's records
  tied to no agent (app); a scope without sees all of the user's records.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from threadline.exceptions import UsageError
from threadline.memory.records import (
    MemoryKind,
    MemoryRecord,
    MemoryScope,
    as_utc,
    check_identifier,
)
from threadline.memory.store import Embedder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DEFAULT_MAX_TEXT_CHARS",
    "KINDS",
    "CONTEXT_WEIGHT",
    "EMBED_MISSING_BATCH",
    "EmbedProgress",
    "embed_missing_rows",
    "embedder_for_missing",
    "NEAR_COPY_SIMILARITY",
    "check_forget_user",
    "check_ids",
    "check_list_limit",
    "check_kinds",
    "check_query",
    "check_records",
    "check_scope",
    "check_valid_to",
    "decode_metadata",
    "demote_similar",
    "encode_metadata",
    "embed_records",
    "embed_texts",
    "from_epoch",
    "owner_token",
    "pack_vector",
    "record_filter",
    "scope_filter",
    "to_epoch",
    "unexpired",
    "unpack_vectors",
    "vector_order",
]


DEFAULT_MAX_TEXT_CHARS = 32_000
"""Longest record text accepted. Memories are facts, turns and summaries, not documents: a longer
text is almost always a mistake (a whole file pasted as one turn), and it would dominate BM25
length normalisation and the embedder's 256-token window alike."""

KINDS: frozenset[str] = frozenset({"fact", "preference", "turn", "summary"})


def _check_text(text: object, what: str, max_chars: int, *, stored: bool = True) -> str:
    if not isinstance(text, str):
        raise UsageError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise UsageError(f"{what} is empty: there is nothing to remember or search for")
    if stored and "\x00" in text:
        raise UsageError(
            f"{what} contains U+0000 (NUL) at index {text.index(chr(0))}, which no store can "
            "keep (PostgreSQL text cannot hold it); remove it or replace it with U+FFFD"
        )
    if len(text) > max_chars:
        raise UsageError(
            f"{what} has {len(text):,} characters, over the limit of {max_chars:,}: store a "
            "summary or split it into several memories (or raise the store's max_text_chars)"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"{what} is not valid Unicode text (a lone surrogate at index {exc.start}): it "
            "cannot be stored; decode the source with errors='replace' first"
        ) from None
    return text


def owner_token(user_id: str) -> str:
    """A short token standing for ``user_id`` (a hash: user ids may be any text).

    SQLite indexes every row under it; both stores key their forget marks by it, so the marks
    do not keep the forgotten user's name.
    """
    return "u" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:24]


def check_scope(scope: object) -> MemoryScope:
    """``scope`` if it is a :class:`MemoryScope`; reads and deletes must name their user."""
    if not isinstance(scope, MemoryScope):
        raise UsageError(
            f"memory stores need scope=MemoryScope(user_id=...), got {scope!r}: memories are "
            "private to their user and are never read or deleted for all users at once"
        )
    return scope


def check_forget_user(user_id: object) -> str:
    """``user_id`` if it names a user."""
    if not isinstance(user_id, str) or not user_id:
        raise UsageError(f"forget needs a non-empty user_id string, got {user_id!r}")
    return check_identifier(user_id, "forget's user_id")


def check_query(query: object, limit: object) -> str:
    """The query text, if searchable, after checking ``limit``."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise UsageError(f"search limit must be a positive int, got {limit!r}")
    # A query is searched as words, and U+0000 is none: it is searched, not refused.
    return _check_text(query, "the search query", 4_000, stored=False)


def check_kinds(kinds: Sequence[MemoryKind] | None) -> list[str] | None:
    """``kinds`` as a list, if each is a known kind."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        raise UsageError(f"kinds must be a sequence of kinds, e.g. [{kinds!r}], not a string")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown memory kinds {unknown!r}; use some of {sorted(KINDS)}")
    return list(kinds)


def check_records(records: Sequence[MemoryRecord], max_chars: int) -> list[MemoryRecord]:
    """``records`` as a list, every one valid, ids unique in the batch."""
    if isinstance(records, MemoryRecord):
        raise UsageError("add() takes a sequence of MemoryRecord; wrap one record in a list")
    out = list(records)
    seen: set[str] = set()
    for record in out:
        if not isinstance(record, MemoryRecord):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(f"add() takes MemoryRecord values, got {type(record).__name__}")
        check_scope(record.scope)
        if record.kind not in KINDS:
            raise UsageError(f"memory {record.id!r} has unknown kind {record.kind!r}")
        if not record.id or record.id in seen:
            raise UsageError(f"memory id {record.id!r} is empty or repeated in one add()")
        check_identifier(record.id, "memory id")
        _check_text(record.text, f"the text of memory {record.id!r}", max_chars)
        seen.add(record.id)
        if record.thread_id is not None:
            check_identifier(record.thread_id, f"thread_id of memory {record.id!r}")
        for message_id in record.message_ids:
            check_identifier(message_id, f"a message id of memory {record.id!r}")
        try:
            encoded = json.dumps(dict(record.metadata), ensure_ascii=False, allow_nan=False)
            encoded.encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"metadata of memory {record.id!r} is not JSON-able text ({exc}); keep it to "
                "strings, finite numbers, booleans, lists and dicts"
            ) from None
        if _holds_nul(dict(record.metadata)):
            raise UsageError(
                f"metadata of memory {record.id!r} contains U+0000 (NUL), which no store can "
                "keep; remove it"
            )
    return out


def _holds_nul(value: object) -> bool:
    """True when a JSON-able value has U+0000 in any string (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        items: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        return any(_holds_nul(k) or _holds_nul(v) for k, v in items.items())
    if isinstance(value, list | tuple):
        entries: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        return any(_holds_nul(v) for v in entries)
    return False


def encode_metadata(record: MemoryRecord) -> str:
    """The record's metadata as JSON (strict: ``check_records`` refused NaN and infinities)."""
    return json.dumps(
        dict(record.metadata), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def decode_metadata(raw: str) -> dict[str, Any]:
    """Metadata back from JSON."""
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def to_epoch(moment: datetime | None) -> float | None:
    """Seconds since the epoch (how times are kept: sortable and comparable in SQL)."""
    return None if moment is None else as_utc(moment).timestamp()


def from_epoch(seconds: float | None) -> datetime | None:
    """An aware UTC datetime from :func:`to_epoch`'s value."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def scope_filter(scope: MemoryScope, mark: str, prefix: str = "") -> tuple[str, list[Any]]:
    """SQL condition (``mark``: the driver's placeholder) and parameters confining to ``scope``."""
    clauses = [f"{prefix}user_id = {mark}"]
    params: list[Any] = [scope.user_id]
    for column in ("agent_id", "app_id"):
        value = getattr(scope, column)
        if value is not None:
            clauses.append(f"({prefix}{column} = {mark} OR {prefix}{column} IS NULL)")
            params.append(value)
    return " AND ".join(clauses), params


def record_filter(
    scope: MemoryScope,
    *,
    mark: str,
    prefix: str,
    time: Callable[[datetime], Any],
    kinds: Sequence[MemoryKind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    exclude_thread_id: str | None = None,
    thread_id: str | None = None,
    include_superseded: bool = False,
) -> tuple[str, list[Any]]:
    """The SQL condition and parameters of a search or list (``time`` converts datetimes)."""
    where, params = scope_filter(check_scope(scope), mark, prefix)
    clauses = [where]
    kind_list = check_kinds(kinds)
    if kind_list is not None:
        marks = ", ".join([mark] * len(kind_list))
        clauses.append(f"{prefix}kind IN ({marks})" if kind_list else "1 = 0")
        params += kind_list
    if since is not None:
        clauses.append(f"{prefix}occurred_at >= {mark}")
        params.append(time(since))
    if until is not None:
        clauses.append(f"{prefix}occurred_at < {mark}")
        params.append(time(until))
    if exclude_thread_id is not None:
        check_identifier(exclude_thread_id, "exclude_thread_id")
        clauses.append(f"({prefix}thread_id IS NULL OR {prefix}thread_id != {mark})")
        params.append(exclude_thread_id)
    if thread_id is not None:
        check_identifier(thread_id, "thread_id")
        clauses.append(f"{prefix}thread_id = {mark}")
        params.append(thread_id)
    if not include_superseded:
        clauses.append(f"{prefix}valid_to IS NULL")
    clauses.append(unexpired(prefix, mark))
    params.append(time(datetime.now(UTC)))
    return " AND ".join(clauses), params


def unexpired(prefix: str, mark: str) -> str:
    """The SQL condition of a record not expired at the moment given as its one parameter."""
    return f"({prefix}expires_at IS NULL OR {prefix}expires_at > {mark})"


def check_list_limit(limit: object) -> None:
    """``list``'s limit must be ``None`` or an int >= 0."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise UsageError(f"list limit must be an int >= 0 or None, got {limit!r}")


def check_ids(memory_ids: Sequence[str]) -> list[str]:
    """``memory_ids`` deduplicated, in order."""
    if isinstance(memory_ids, str):
        raise UsageError("delete() takes a sequence of memory ids; wrap one id in a list")
    return list(dict.fromkeys(memory_ids))


def check_valid_to(valid_to: object) -> datetime:
    """``valid_to`` if it is a datetime."""
    if not isinstance(valid_to, datetime):
        raise UsageError(f"valid_to must be a datetime, got {valid_to!r}")
    return valid_to


def vector_order(
    pool: dict[str, bytes], query_vector: bytes, dimension: int
) -> list[tuple[str, float]]:
    """The ids of ``pool`` with their cosine similarity to the query, most similar first.

    Vectors are normalised, so a matrix-vector product is the cosine: exact, and for a few
    thousand candidates well under a millisecond.
    """
    if not pool:
        return []
    ids = list(pool)
    matrix = unpack_vectors([pool[m] for m in ids], dimension)
    similarity = matrix @ unpack_vectors([query_vector], dimension)[0]
    order = similarity.argsort(kind="stable")[::-1]
    return [(ids[int(i)], float(similarity[int(i)])) for i in order]


def demote_similar(
    ranked: Sequence[tuple[str, float]],
    pool: dict[str, bytes],
    dimension: int,
    threshold: float,
) -> list[tuple[str, float]]:
    """``ranked`` with near-duplicates of a better candidate halved in score, then re-sorted.

    People repeat themselves ("is it better to rent or buy?" in five sessions); without this, one
    repeated line can fill every result slot and push out the one turn that answers. Candidates
    whose vectors have cosine >= ``threshold`` with a better-ranked one are demoted, not dropped.
    """
    np = _numpy()
    kept: list[Any] = []
    out: list[tuple[str, float]] = []
    for memory_id, score in ranked:
        blob = pool.get(memory_id)
        if blob is not None:
            vector = unpack_vectors([blob], dimension)[0]
            if kept and float(np.max(np.stack(kept) @ vector)) >= threshold:
                score *= 0.5
            kept.append(vector)
        out.append((memory_id, score))
    out.sort(key=lambda pair: -pair[1])
    return out


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy comes with the memory extra
        raise UsageError("vector search needs numpy: pip install 'threadline[memory]'") from exc
    return numpy


async def embed_texts(embedder: Embedder, texts: Sequence[str]) -> list[bytes]:
    """Each text's vector as float32 bytes, after checking the embedder kept its promises."""
    vectors = await embedder.embed(list(texts))
    if len(vectors) != len(texts):
        raise UsageError(
            f"embedder {embedder.name!r} returned {len(vectors)} vectors for {len(texts)} texts"
        )
    return [pack_vector(v, embedder) for v in vectors]


CONTEXT_WEIGHT = 0.5
"""How much a record's ``embedding_context`` counts against its own text in its vector. Measured
with ``bench/memory.py`` (session R@5 / turn R@10 of the default fusion): 0.5 gave 0.969 / 0.985,
1.0 gave 0.975 / 0.975, 0.3 gave 0.947 / 0.988 (the last with near-copy 0.85)."""

NEAR_COPY_SIMILARITY = 0.75
"""Default cosine above which a hit is a near copy of a better one and has its score halved. With
blended vectors, 0.85 let a conversation's generic replies ("Sure! Here's an idea you might
like."), each carrying its own question's topic, fill the first five slots: session R@5 fell to
0.941 from 0.969 at 0.75."""


async def embed_records(embedder: Embedder, records: Sequence[MemoryRecord]) -> list[bytes]:
    """Each record's vector: its own text's, blended with its context's when it has one.

    Every distinct text of the batch is embedded once. In a conversation a short message's
    context is the message before it, which is itself a record of the batch, so blending (rather
    than embedding the two texts together) makes that context free: ingest costs one embedding
    per message.
    """
    np = _numpy()
    slots: dict[str, int] = {}
    for r in records:
        slots.setdefault(r.embedding_text or r.text, len(slots))
        if r.embedding_context:
            slots.setdefault(r.embedding_context, len(slots))
    texts = list(slots)
    vectors = [np.frombuffer(v, dtype=np.float32) for v in await embed_texts(embedder, texts)]
    out: list[bytes] = []
    for r in records:
        vector = vectors[slots[r.embedding_text or r.text]]
        if r.embedding_context:
            vector = vector + CONTEXT_WEIGHT * vectors[slots[r.embedding_context]]
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        out.append(bytes(vector.astype(np.float32).tobytes()))
    return out


EMBED_MISSING_BATCH = 64
"""Records given vectors per transaction by ``embed_missing``: big enough for the embedder's
batching, small enough that progress shows and a stop keeps most of the work done."""

EmbedProgress = Callable[[int, int], None]
"""``progress(done, total)``, called after each batch that ``embed_missing`` stores."""


async def embed_missing_rows(
    embedder: Embedder,
    *,
    total: int,
    start: Any,
    read: Callable[[Any], Awaitable[Sequence[tuple[Any, str]]]],
    write: Callable[[list[tuple[bytes, Any]]], Awaitable[None]],
    progress: EmbedProgress | None,
) -> int:
    """The loop of both stores' ``embed_missing``: read, embed, write, batch after batch.

    ``read(after)`` returns up to ``EMBED_MISSING_BATCH`` ``(key, text)`` rows without a vector
    and with a key above ``after`` (``start`` first), in key order, so a row whose write found it
    already embedded is never read again; ``write`` stores ``(vector, key)`` pairs in one
    transaction, only where the vector is still missing. Returns how many were embedded.
    """
    done, after = 0, start
    while done < total:
        rows = await read(after)
        if not rows:
            break
        vectors = await embed_texts(embedder, [text for _, text in rows])
        await write([(vector, key) for (key, _), vector in zip(rows, vectors, strict=True)])
        done, after = done + len(rows), rows[-1][0]
        if progress is not None:
            progress(done, max(total, done))
    return done


def embedder_for_missing(store: object, embedder: Embedder | None) -> Embedder:
    """The store's embedder, or the ``UsageError`` of ``embed_missing`` without one."""
    if embedder is None:
        raise UsageError(
            f"{store!r} has no embedder to make vectors with; open it with one "
            "(the memory extra's default_embedder())"
        )
    return embedder


def pack_vector(vector: Sequence[float], embedder: Embedder) -> bytes:
    """A vector as float32 bytes (1.5 KB for 384 dimensions)."""
    np = _numpy()
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (embedder.dimension,) or not bool(np.isfinite(array).all()):
        raise UsageError(
            f"embedder {embedder.name!r} returned a vector of shape {array.shape} (or with "
            f"non-finite values); it promised {embedder.dimension} finite floats"
        )
    norm = float(np.linalg.norm(array))
    if norm > 0 and not math.isclose(norm, 1.0, rel_tol=1e-3):
        array = array / norm
    return bytes(array.tobytes())


def unpack_vectors(blobs: Sequence[bytes], dimension: int) -> npt.NDArray[np.float32]:
    """A ``(len(blobs), dimension)`` float32 matrix."""
    np = _numpy()
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)
