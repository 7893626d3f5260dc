"""Fixtures for tests of the embedded model: skip without it, unless CI says it must be there."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from threadline.clients.local import default_model_path
from threadline.exceptions import ClientError


def _local_model_or_reason() -> tuple[Path | None, str]:
    if importlib.util.find_spec("llama_cpp") is None:
        return None, "llama-cpp-python is not installed (pip install 'threadline[local]')"
    try:
        return default_model_path(), ""
    except ClientError as exc:
        return None, str(exc)


@pytest.fixture(scope="session")
def local_model_path() -> Path:
    """The default GGUF model; skips (or fails with THREADLINE_REQUIRE_LOCAL_MODEL=1) without it."""
    path, reason = _local_model_or_reason()
    if path is None:
        if os.environ.get("THREADLINE_REQUIRE_LOCAL_MODEL") == "1":
            pytest.fail(
                f"THREADLINE_REQUIRE_LOCAL_MODEL=1 but the local model is missing: {reason}"
            )
        pytest.skip(f"local model unavailable: {reason}")
    return path
