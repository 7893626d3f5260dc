"""Loading llama.cpp for ``LocalChatClient``: the environment it needs, thread count, AMX guard.

Kept apart from the client because it deals with llama.cpp's build and runtime quirks, not chat.

Why ``OMP_WAIT_POLICY=PASSIVE``: llama.cpp's OpenMP build (the default of llama-cpp-python) keeps
its worker threads spinning between the steps of a token by default. On a machine that is doing
anything else (a laptop, ``threadline serve --local`` beside its own load, two processes with a
model each) the spinning threads take the cores the useful ones need: measured with two processes
generating at once, 3.9 tokens/s each spinning against 41.6 passive. libgomp reads the variable
once, when it is loaded, so it is set (unless the user set it) when this module is imported, which
happens before ``llama_cpp`` is first imported by threadline. The cost when the machine is idle is
a few microseconds of wake-up per step, within the noise of a token's tens of milliseconds.

Why physical cores: token generation is bound by memory bandwidth and matrix kernels that gain
nothing from a second hyper-thread of the same core, and each extra thread is one more that must
be scheduled before a step can finish. Beyond that, ``LocalChatClient`` lets one generation run
at a time per process (see ``GENERATION_LOCK``), so those threads are never oversubscribed by us.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threadline.exceptions import ClientError

__all__ = [
    "GENERATION_LOCK",
    "cpu_has_amx",
    "default_threads",
    "import_llama",
    "without_extra_buffers",
]

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GENERATION_LOCK = threading.Lock()
"""Held while any model of this process evaluates or generates: one at a time uses the cores."""

_LLAMA_HINT = (
    "LocalChatClient needs llama-cpp-python: "
    "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'threadline[local]'"
)


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs among the CPUs this process may run on (Linux)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None
    cores: set[tuple[str, str]] = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(allowed)
        cores.add((package, core))
    return len(cores) or None


def default_threads() -> int:
    """Physical cores available to this process (logical CPUs where that is unknown)."""
    return _physical_cores() or os.cpu_count() or 1


def import_llama() -> Any:
    try:
        import llama_cpp
        import llama_cpp._utils as llama_utils
    except ImportError as exc:
        raise ClientError(f"{_LLAMA_HINT} ({exc})") from exc
    _quiet_null_files(llama_utils)
    return llama_cpp


def _quiet_null_files(llama_utils: Any) -> None:
    """Stop llama_cpp's two lifelong /dev/null files being reported as leaks at exit.

    ``llama_cpp._utils`` opens them at import, to silence llama.cpp's output, and never closes
    them: every process that loads a model printed two "ResourceWarning: unclosed file" lines
    at exit (after pytest's summary, too: issue 21). They are swapped for files over one lasting
    descriptor that Python does not own (``closefd=False``), which llama_cpp uses the same way
    (``fileno()``) and which nothing reports, and the originals are closed.
    """
    for name in ("outnull_file", "errnull_file"):
        old = getattr(llama_utils, name, None)
        if old is None or getattr(old, "closed", True) or not old.buffer.raw.closefd:
            continue  # already swapped, or a llama_cpp that no longer has them
        descriptor = os.open(os.devnull, os.O_WRONLY)
        setattr(llama_utils, name, open(descriptor, "w", closefd=False))
        old.close()


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
