"""Text from threads made safe to print: no terminal control codes, no unencodable characters.

Thread contents come from models, imported files and other programs. Printed raw, an escape
sequence in a title could rewrite the terminal (move the cursor, change the window title, hide
lines), and a lone surrogate would crash the print itself (``UnicodeEncodeError``). Every string
the command prints from a thread goes through :func:`printable`.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls (ESC, CSI, BEL...) and DEL; not \t \n
    "\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional overrides ("trojan source")
    "\ud800-\udfff]"  # lone surrogates: not Unicode text, cannot be encoded
)
_LINE_BREAKS = re.compile("[\t\n]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, multiline: bool = True) -> str:
    r"""``text`` with control codes shown as ``\x1b``-style escapes.

    Tabs and newlines are kept when ``multiline`` (a message's text), escaped otherwise (an id or
    a title on one table row).
    """
    safe = _UNSAFE.sub(_escape, text)
    return safe if multiline else _LINE_BREAKS.sub(_escape, safe)
