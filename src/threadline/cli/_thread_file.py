r"""Reading a thread file for ``threadline threads import``: bounded, checked, never a traceback.

A thread file may come from anywhere, so before anything is parsed into messages it must be:

* at most :data:`MAX_IMPORT_BYTES` long (read up to one byte past the limit, never whole);
* UTF-8 JSON, nested no deeper than the decoder allows (deeper is refused, not a RecursionError);
* valid Unicode throughout: JSON can spell a lone surrogate (``"\ud800"``), which no database or
  terminal can carry; such text is refused with the path of the field that holds it.

Then :func:`~threadline.threads.portable.parse_portable_thread` checks the schema, every message
and the thread id (see :func:`~threadline.threads.state.check_thread_id`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from threadline.exceptions import ThreadStateError, UsageError
from threadline.threads.portable import PortableThread, parse_portable_thread

__all__ = ["MAX_IMPORT_BYTES", "find_invalid_text", "read_thread_file"]

MAX_IMPORT_BYTES = 64 * 1024 * 1024
"""The largest thread file ``threads import`` reads: 64 MiB (a thread of about 100,000 turns)."""


def _read_bytes(file: str) -> bytes:
    try:
        if file == "-":
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:  # a text-only stdin (embedding, tests)
                return sys.stdin.read(MAX_IMPORT_BYTES + 1).encode("utf-8", "surrogatepass")
            return stream.read(MAX_IMPORT_BYTES + 1)
        with Path(file).open("rb") as f:
            return f.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file!r}: {exc}") from exc


def find_invalid_text(value: object) -> tuple[str, str] | None:
    """The JSON path and text of the first string (key or value) that is not valid Unicode.

    Iterative, so no nesting can exhaust the stack.
    """
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not _encodable(item):
                return path or "(the file)", item
        elif isinstance(item, dict):
            children: list[tuple[object, str]] = []
            entries: dict[object, object] = item  # pyright: ignore[reportUnknownVariableType]
            for key, child in entries.items():
                name = str(key)
                child_path = f"{path}.{name}" if path else name
                if not name.isascii() and not _encodable(name):
                    return child_path, name
                children.append((child, child_path))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            items: list[object] = item  # pyright: ignore[reportUnknownVariableType]
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(items))))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_thread_file(file: str) -> PortableThread:
    """Read, bound and validate a thread file (``-`` for stdin); nothing is written.

    Raises:
        UsageError: the file cannot be read.
        ThreadStateError: the file is too large, not UTF-8 JSON, nested too deep, holds invalid
            text, or is not a valid thread; the message says which and where.
    """
    raw = _read_bytes(file)
    if len(raw) > MAX_IMPORT_BYTES:
        raise ThreadStateError(
            f"{file!r} is larger than a thread file may be ({MAX_IMPORT_BYTES:,} bytes); it was "
            "not read further. Import it in code with agent.deserialize_thread() instead"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ThreadStateError(f"{file!r} is not a thread file: not UTF-8 text ({exc})") from exc
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ThreadStateError(f"{file!r} is not a thread file: invalid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ThreadStateError(
            f"{file!r} is not a thread file: its JSON is nested too deep to read"
        ) from exc
    invalid = find_invalid_text(state)
    if invalid is not None:
        path, bad = invalid
        position = next(i for i, ch in enumerate(bad) if "\ud800" <= ch <= "\udfff")
        raise ThreadStateError(
            f"{file!r} was not imported: field {path} holds text that is not valid Unicode (a "
            f"lone surrogate {bad[position]!r} at character {position}); fix or remove that "
            "text and import again"
        )
    try:
        return parse_portable_thread(state)
    except RecursionError as exc:  # nesting the decoder accepted but a message cannot hold
        raise ThreadStateError(f"{file!r} was not imported: it is nested too deep") from exc
    except ThreadStateError as exc:
        raise ThreadStateError(f"{file!r} was not imported: {exc}") from exc
