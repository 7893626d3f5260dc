"""The one error tree: every public error lives in ``threadline.exceptions``, drawn in its
docstring under its real parent, and exported by ``threadline``."""

from __future__ import annotations

import inspect
import re

import threadline
from threadline import exceptions


def _drawn_parents() -> dict[str, str]:
    """Each class in the docstring's tree with the class it is drawn under."""
    doc = exceptions.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*(?:[│ ]\s*)*(?:[├└]── )?)([A-Z]\w+Error)\b", line)
        if not match:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else ""
        stack.append((depth, name))
    return parents


def test_every_public_error_is_drawn_under_its_parent() -> None:
    drawn = _drawn_parents()
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert inspect.isclass(cls) and issubclass(cls, Exception)
        assert name in drawn, f"{name} is missing from the tree in exceptions.py's docstring"
        if cls is not exceptions.ThreadlineError:
            parent = next(b for b in cls.__mro__[1:] if b.__name__ in drawn)
            assert drawn[name] == parent.__name__, f"{name} is drawn under {drawn[name]!r}"


def test_the_hosting_and_client_errors_live_in_the_tree() -> None:
    for name in ("OpenAIServiceError", "ItemsChangedError"):
        assert name in exceptions.__all__ and name in threadline.__all__
        assert getattr(threadline, name) is getattr(exceptions, name)
    assert issubclass(exceptions.OpenAIServiceError, exceptions.ClientError)
    assert issubclass(exceptions.ItemsChangedError, exceptions.StoreError)
