from __future__ import annotations

from types import ModuleType

import pytest

import threadline


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(threadline).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    lazy = {name for name in threadline.__all__ if name not in vars(threadline)}
    assert public | lazy == set(threadline.__all__) - {"__version__"}


def test_every_exported_name_resolves() -> None:
    for name in threadline.__all__:
        assert getattr(threadline, name) is not None, name


def test_unknown_attribute_is_a_clear_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(threadline, "NoSuchThing")  # noqa: B009
