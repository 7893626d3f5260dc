"""The serialized form of a thread: its schema, validation and migration from older versions.

A thread's state travels (files, databases, HTTP), so it is validated on the way in (with
pydantic, at this edge only) and every problem is reported with the path of the offending field.
``thread.serialize()`` writes every key, ``null`` where empty, so a missing key always means a
damaged state: it is refused, never read as "empty" (a state whose ``store`` was cut off must not
restore an empty thread).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic_core import ErrorDetails

from threadline.exceptions import ThreadStateError

__all__ = [
    "SCHEMA_VERSION",
    "THREAD_ID_MAX_LENGTH",
    "THREAD_STATE_TYPE",
    "ThreadState",
    "check_thread_id",
    "parse_thread_state",
]

THREAD_STATE_TYPE = "threadline.thread"
SCHEMA_VERSION = 2
"""Bump when the layout changes, and add the step from the old layout to ``_MIGRATIONS``."""


def _v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added the thread's ``user_id`` and writes every key, ``null`` where empty.

    Threads saved before it belong to nobody. Version 1 left out ``service_thread_id``, ``store``
    and empty binding fields; they become ``null`` here, except that a bound thread (one an agent
    ran on) without its conversation id or store has lost its history and is refused.
    """
    binding = state.get("binding")
    if isinstance(binding, Mapping) and binding:
        needs = "service_thread_id" if binding.get("service") is not None else "store"  # pyright: ignore[reportUnknownMemberType]
        if "service_thread_id" not in state and "store" not in state:
            raise ThreadStateError(
                f"thread state is missing required key {needs!r}: the thread is bound to an "
                "agent, so its history was cut off; restore it from an intact copy"
            )
    migrated: dict[str, Any] = {
        "service_thread_id": None,
        "store": None,
        "context_providers": {},
        **state,
    }
    if isinstance(binding, Mapping):
        migrated["binding"] = {"service": None, "agent_id": None, "agent_name": None, **binding}
    return {**migrated, "schema_version": 2, "user_id": None}


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
"""``version -> function`` turning a state of that version into one of ``version + 1``."""


THREAD_ID_MAX_LENGTH = 128
_THREAD_ID = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.:-]{{0,{THREAD_ID_MAX_LENGTH - 1}}}")


def check_thread_id(
    value: object, *, field: str = "thread_id", error: type[Exception] = ThreadStateError
) -> str:
    """Return ``value`` if it can be a thread id, else raise ``error`` naming ``field``.

    Thread ids arrive from files, databases and requests, and end up in keys, SQL parameters and
    terminals; one rule everywhere keeps them harmless: 1 to 128 characters of ASCII letters,
    digits and ``_ . : -``, not starting with ``.``, ``:`` or ``-`` (no paths, no options, no
    control codes). Generated ids (``thread_<hex>``) and service ids (``conv_...``, ``resp_...``,
    ``thread_...``) all fit.
    """
    if isinstance(value, str) and _THREAD_ID.fullmatch(value):
        return value
    shown = repr(value)
    if isinstance(value, str) and len(value) > 40:  # a megabyte id stays out of the message
        shown = f"{value[:40]!r}... ({len(value)} characters)"
    raise error(
        f"{field} {shown} is not a valid thread id: use 1 to {THREAD_ID_MAX_LENGTH} ASCII letters, "
        "digits, '_', '.', ':' or '-', starting with a letter, digit or '_'"
    )


_Name = Annotated[str, Strict(), Field(min_length=1)]
"""A non-empty string, exactly (no bytes or numbers turned into one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadState:
    """A validated thread state, ready to be turned back into an ``AgentThread``."""

    thread_id: str
    user_id: str | None
    service: str | None
    agent_id: str | None
    agent_name: str | None
    service_thread_id: str | None
    store_kind: str | None
    store_state: Mapping[str, Any] | None
    context_state: dict[str, dict[str, Any]]


class _Binding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: _Name | None
    agent_id: _Name | None
    agent_name: _Name | None


class _Store(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: _Name | None
    state: dict[str, Any]


class _Body(BaseModel):
    """Every key of a current thread state; all required (``null`` where empty)."""

    model_config = ConfigDict(extra="forbid")
    type: str
    schema_version: int
    thread_id: _Name | None
    user_id: _Name | None
    binding: _Binding
    service_thread_id: _Name | None
    store: _Store | None
    context_providers: dict[str, dict[str, Any]]


_ORDER = ("thread_id", "binding", "service_thread_id", "store", "context_providers", "user_id")
"""The order fields are reported in when several are wrong: the first one a reader must fix."""

_OBJECTS = {"binding", "store", "store.state", "context_providers"}
"""Fields that must be JSON objects."""


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _first_problem(errors: list[ErrorDetails]) -> ThreadStateError:
    """The error to report of pydantic's list, worded as threadline always worded it."""

    def rank(error: ErrorDetails) -> tuple[int, int, int]:
        loc = error["loc"]
        kind = {"missing": 0, "extra_forbidden": 1}.get(error["type"], 2)
        top = str(loc[0])
        # A wrong object is reported before what is wrong inside it; then missing, then unknown.
        return (
            0 if len(loc) == 1 and kind < 2 else 1,
            _ORDER.index(top) if top in _ORDER else len(_ORDER),
            0 if len(loc) == 1 else kind + 1,
        )

    first = min(errors, key=rank)
    loc = first["loc"]
    parent = _path(loc[:-1])
    where = f"{parent}." if parent else ""
    if first["type"] == "missing":
        missing = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "missing" and e["loc"][:-1] == loc[:-1]
        ]
        others = "" if len(missing) == 1 else f" (and {missing[1:]})"
        return ThreadStateError(
            f"thread state is missing required key '{where}{missing[0]}'{others}; "
            "thread.serialize() writes every key (null where empty), so this state was cut or "
            "edited: restore it from an intact copy"
        )
    if first["type"] == "extra_forbidden":
        unknown = sorted(
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"][:-1] == loc[:-1]
        )
        what = "thread state has" if not parent else f"field {parent!r} has"
        return ThreadStateError(f"{what} unknown field(s) {unknown}")
    path = _path(loc)
    if path in _OBJECTS or parent == "context_providers":
        return ThreadStateError(f"field '{path}' must be an object, got {first['input']!r}")
    return ThreadStateError(
        f"{where}{loc[-1]} must be a non-empty string or null, got {first['input']!r}"
    )


def _validated(d: Mapping[str, Any]) -> _Body:
    try:
        return _Body.model_validate(d)
    except ValidationError as exc:
        # Only the subfields of a wrong object would be noise: keep the errors that explain.
        raise _first_problem(exc.errors()) from None


def parse_thread_state(state: object) -> ThreadState:
    """Validate (and migrate) a serialized thread.

    The envelope (``type``, ``schema_version``) is checked by hand, since a state of another
    version is migrated before its body means anything; the body is validated by one pydantic
    model, and the rules between fields (a thread is local or service-managed, never both) after.

    Raises:
        ThreadStateError: the state is not a thread state, is of an unknown version, or has a
            malformed field; the message names the field.
    """
    if not isinstance(state, Mapping):
        raise ThreadStateError(
            f"thread state must be a dict from thread.serialize(), got {type(state).__name__}"
        )
    d: dict[str, Any] = dict(state)  # pyright: ignore[reportUnknownArgumentType]
    if d.get("type") != THREAD_STATE_TYPE:
        raise ThreadStateError(
            f"not a threadline thread state: field 'type' is {d.get('type')!r}, "
            f"expected {THREAD_STATE_TYPE!r}"
        )
    version = d.get("schema_version")
    if type(version) is not int:
        raise ThreadStateError(f"field 'schema_version' must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ThreadStateError(
            f"thread state has schema_version {version}, newer than this threadline reads "
            f"({SCHEMA_VERSION}); upgrade threadline to load it"
        )
    while version < SCHEMA_VERSION:
        migrate = _MIGRATIONS.get(version)
        if migrate is None:
            raise ThreadStateError(f"unknown thread state schema_version {version}")
        d = migrate(d)
        version += 1

    body = _validated(d)
    if body.thread_id is None:
        raise ThreadStateError("thread state field 'thread_id' is null; it must name the thread")
    check_thread_id(body.thread_id, field="field 'thread_id'")
    service = body.binding.service
    service_thread_id = body.service_thread_id
    if service_thread_id is not None:
        check_thread_id(service_thread_id, field="field 'service_thread_id'")
    store = body.store
    if service_thread_id is not None and store is not None:
        raise ThreadStateError(
            "thread state has both 'service_thread_id' and 'store'; a thread is either kept by a "
            "service or local, never both"
        )
    if service_thread_id is not None and service is None:
        raise ThreadStateError("a service-managed thread state must name its 'binding.service'")
    if service_thread_id is None and service is not None:
        raise ThreadStateError(
            f"thread state is bound to service {service!r} but has no 'service_thread_id'"
        )
    if store is not None and store.kind is None:
        raise ThreadStateError("field 'store.kind' is null; it must name the store kind")
    return ThreadState(
        thread_id=body.thread_id,
        user_id=body.user_id,
        service=service,
        agent_id=body.binding.agent_id,
        agent_name=body.binding.agent_name,
        service_thread_id=service_thread_id,
        store_kind=None if store is None else store.kind,
        store_state=None if store is None else store.state,
        context_state=body.context_providers,
    )
