"""Evaluated prompts kept aside, so side jobs never cost the chat its evaluated prefix.

llama.cpp reuses the longest common token prefix of the previous call's prompt: a chat pays only
for its new tokens each turn. But one ``Llama`` context holds one evaluated sequence; a different
prompt on the same client between two turns (a memory's fact extraction, a thread summary)
overwrites it, and the next turn re-evaluates the whole conversation (issue 21: 4 to 10 s instead
of 0.3 s to the first token). So, before a prompt is evaluated, :class:`PrefixStates` compares
it with what the context holds and with a few saved snapshots: when the context is about to be
mostly overwritten, it is copied aside first; when a snapshot shares more of the prompt than the
context does, it is put back. Each workload (the chat, the extractor) finds its own prefix
again, with no second model context.

A snapshot is the key/value cache of sequence 0 (``llama_state_seq_get_data``, about 12 KB per
token for the default model) and its tokens, not ``Llama.save_state``, which also copies the
logits of a whole batch (300 MB for a Qwen vocabulary). The logits need no saving: the
``Llama.generate`` that follows always evaluates at least the prompt's last token again.

Everything here runs on the client's worker thread under the generation lock.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

__all__ = ["PrefixStates"]

_MIN_TOKENS = 64
"""A context holding fewer tokens is not worth saving: evaluating it again costs little."""
_MIN_GAIN = 32
"""A snapshot is restored only when it spares at least this many tokens of evaluation."""
_MAX_SNAPSHOTS = 3
_MAX_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class _Snapshot:
    tokens: list[int]
    data: bytes


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """Saved evaluated prompts of one ``Llama`` object, swapped in when they fit a prompt better.

    ``llm`` is typed ``Any``: this reaches llama-cpp-python's low-level state functions and the
    ``Llama`` object's token bookkeeping, which its types do not describe as public.
    """

    def __init__(self, llama_cpp: Any) -> None:
        self._lib = llama_cpp
        self._saved: list[_Snapshot] = []
        self.restored = 0
        """How many times a snapshot was put back (read by tests and the benchmark)."""

    def clear(self) -> None:
        """Forget every snapshot (the model was closed)."""
        self._saved.clear()

    def prepare(self, llm: Any, prompt: list[int]) -> None:
        """Make ``llm``'s context hold the longest prefix of ``prompt`` available.

        Failures of the state functions are not errors: the prompt is then evaluated in full,
        as it would be without snapshots.
        """
        live = [int(t) for t in llm.input_ids[: llm.n_tokens]]
        live_shared = _common(live, prompt)
        best: _Snapshot | None = None
        best_shared = live_shared
        for snapshot in self._saved:
            shared = _common(snapshot.tokens, prompt)
            if shared > best_shared:
                best, best_shared = snapshot, shared
        restore = best if best is not None and best_shared >= live_shared + _MIN_GAIN else None
        if restore is not None:  # taken out first: saving below may evict or replace snapshots
            self._saved.remove(restore)
        # Save the context when this prompt would overwrite most of it.
        if len(live) >= _MIN_TOKENS and (restore is not None or live_shared < len(live) // 2):
            self._save(llm, live)
        if restore is not None and self._load(llm, restore):
            self.restored += 1

    def _save(self, llm: Any, tokens: list[int]) -> None:
        lib = self._lib
        try:
            size = int(lib.llama_state_seq_get_size(llm.ctx, 0))
            buffer = (ctypes.c_uint8 * size)()
            written = int(lib.llama_state_seq_get_data(llm.ctx, buffer, size, 0))
        except (AttributeError, OSError, ValueError):  # an older llama.cpp: no snapshots
            return
        if not 0 < written <= size:
            return
        # A snapshot this one extends (the same conversation, earlier) is no longer needed.
        self._saved = [
            s for s in self._saved if _common(s.tokens, tokens) < len(s.tokens) * 9 // 10
        ]
        self._saved.append(_Snapshot(tokens=tokens, data=bytes(buffer)[:written]))
        while len(self._saved) > _MAX_SNAPSHOTS or (
            len(self._saved) > 1 and sum(len(s.data) for s in self._saved) > _MAX_BYTES
        ):
            del self._saved[0]

    def _load(self, llm: Any, snapshot: _Snapshot) -> bool:
        lib = self._lib
        buffer = (ctypes.c_uint8 * len(snapshot.data)).from_buffer_copy(snapshot.data)
        try:
            memory = lib.llama_get_memory(llm.ctx)
            lib.llama_memory_seq_rm(memory, -1, 0, -1)
            loaded = int(lib.llama_state_seq_set_data(llm.ctx, buffer, len(snapshot.data), 0))
        except (AttributeError, OSError, ValueError):
            loaded = 0
        if not loaded:
            llm.reset()  # the context may be half-written: evaluate the prompt in full
            return False
        count = len(snapshot.tokens)
        llm.input_ids[:count] = snapshot.tokens
        llm.n_tokens = count
        setattr(llm, "_requires_eval", True)  # noqa: B010 - its logits are not restored
        return True
