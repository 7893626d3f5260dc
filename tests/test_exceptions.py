"""The error tree is whole: one module, drawn in its docstring, every error raised somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import threadline
from threadline import exceptions

SRC = Path(threadline.__file__).parent


def _errors() -> dict[str, type[BaseException]]:
    return {name: getattr(exceptions, name) for name in exceptions.__all__}


def test_every_public_error_lives_in_exceptions_py() -> None:
    for name in threadline.__all__:
        value = getattr(threadline, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, exceptions.ThreadlineError), name
            assert value.__module__ == exceptions.__name__, name
            assert name in exceptions.__all__, name


def test_the_docstring_draws_every_error_under_its_parent() -> None:
    lines = [
        (line.index("──"), match.group(1))
        for line in (exceptions.__doc__ or "").splitlines()
        if (match := re.search(r"── (\w+Error)\b", line))
    ]
    top = min(column for column, _ in lines)
    drawn = [name for _, name in lines]
    assert sorted(drawn) == sorted(set(_errors()) - {"ThreadlineError"})
    for index, (column, name) in enumerate(lines):
        parent = _errors()[name].__mro__[1]
        if parent is exceptions.ThreadlineError:
            assert column == top, name
            continue
        # The nearest line above, one level (4 columns) less deep, is the parent.
        above = next(n for c, n in reversed(lines[:index]) if c == column - 4)
        assert above == parent.__name__, name


def test_every_error_is_raised_somewhere() -> None:
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for path in SRC.rglob("*.py")
        if path.name != "exceptions.py"
    )
    for name in _errors():
        if name == "ThreadlineError":
            continue  # the base: caught, never raised itself
        assert re.search(rf"\b{name}\(", code), f"{name} is never raised: raise it or remove it"


def test_the_client_errors_live_in_the_tree() -> None:
    name = "OpenAIServiceError"
    assert name in exceptions.__all__ and name in threadline.__all__
    assert getattr(threadline, name) is getattr(exceptions, name)
    assert issubclass(exceptions.OpenAIServiceError, exceptions.ClientError)


def test_the_server_has_no_conflict_error_of_its_own() -> None:
    # A conversation that changed under a turn is a thread that changed: one error for both.
    assert not hasattr(exceptions, "ItemsChangedError")
