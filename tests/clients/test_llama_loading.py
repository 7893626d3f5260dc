"""Loading settings (waiting policy, threads) and the AMX guard, without loading a model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from threadline.clients._llama_loading import cpu_has_amx, default_threads

SRC = str(Path(__file__).resolve().parents[2] / "src")


class _SystemInfo:
    """Stands in for the llama_cpp module: only its system-info string matters here."""

    def __init__(self, info: bytes) -> None:
        self.info = info

    def llama_print_system_info(self) -> bytes:
        return self.info


def test_amx_builds_are_detected_from_llama_system_info() -> None:
    native = b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 | "
    generic = (
        b"CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | REPACK = 1 | "
    )
    assert cpu_has_amx(_SystemInfo(native))
    assert not cpu_has_amx(_SystemInfo(generic))


def test_openmp_threads_wait_passively_unless_the_user_chose() -> None:
    # Set when threadline's llama.cpp loader is imported, before llama_cpp loads libgomp; a
    # user's own value wins. Checked in fresh interpreters, whose environment we control.
    code = "import os, threadline.clients.local, llama_cpp; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = SRC
    fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert fresh.stdout.strip() == "PASSIVE", fresh.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert chosen.stdout.strip() == "ACTIVE", chosen.stderr


def test_threads_default_to_the_physical_cores_we_may_use() -> None:
    threads = default_threads()
    assert 1 <= threads <= len(os.sched_getaffinity(0))


def test_loading_llama_leaves_no_unclosed_files_at_exit() -> None:
    # llama_cpp opens two /dev/null files at import and never closes them: each process that
    # loaded it reported them at exit (after pytest's summary too). Its output suppression must
    # still work on the swapped files.
    code = (
        "import os\n"
        "from threadline.clients._llama_loading import import_llama\n"
        "import_llama(); import_llama()\n"
        "import llama_cpp._utils as utils\n"
        "with utils.suppress_stdout_stderr(disable=False):\n"
        "    os.write(1, b'hidden\\n')\n"
        "print('shown')\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    run = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", code],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "shown\n"
    assert "ResourceWarning" not in run.stderr, run.stderr
