"""The serialized form of a thread: its schema, validation and migration from older versions.

A thread's state travels (files, databases, HTTP), so it is checked field by field on the way in
and every problem is reported with the path of the offending field. ``thread.serialize()`` writes
every key, ``null`` where empty, so a missing key always means a damaged state: it is refused,
never read as "empty" (a state whose ``store`` was cut off must not restore an empty thread).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


_KEYS = (
    "type",
    "schema_version",
    "thread_id",
    "user_id",
    "binding",
    "service_thread_id",
    "store",
    "context_providers",
)
"""Every key of a current thread state; all required (``null`` where empty)."""
_BINDING_KEYS = ("service", "agent_id", "agent_name")
_STORE_KEYS = ("kind", "state")


def _require(d: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Refuse a missing key (naming it) and an unknown one: both mean the state was damaged."""
    missing = [k for k in keys if k not in d]
    if missing:
        raise ThreadStateError(
            f"thread state is missing required key '{where}{missing[0]}'"
            f"{'' if len(missing) == 1 else f' (and {missing[1:]})'}; "
            "thread.serialize() writes every key (null where empty), so this state was cut or "
            "edited: restore it from an intact copy"
        )
    unknown = sorted(d.keys() - set(keys))
    if unknown:
        what = "thread state has" if not where else f"field {where.rstrip('.')!r} has"
        raise ThreadStateError(f"{what} unknown field(s) {unknown}")


def _optional_str(d: Mapping[str, Any], key: str, where: str) -> str | None:
    value = d[key]
    if value is not None and (not isinstance(value, str) or not value):
        raise ThreadStateError(f"{where}{key} must be a non-empty string or null, got {value!r}")
    return value


def parse_thread_state(state: object) -> ThreadState:
    """Validate (and migrate) a serialized thread.

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

    _require(d, _KEYS, "")
    thread_id = _optional_str(d, "thread_id", "")
    if thread_id is None:
        raise ThreadStateError("thread state field 'thread_id' is null; it must name the thread")
    check_thread_id(thread_id, field="field 'thread_id'")

    binding = d["binding"]
    if not isinstance(binding, Mapping):
        raise ThreadStateError(f"field 'binding' must be an object, got {binding!r}")
    binding_map: Mapping[str, Any] = binding  # pyright: ignore[reportUnknownVariableType]
    _require(binding_map, _BINDING_KEYS, "binding.")
    service = _optional_str(binding_map, "service", "binding.")

    service_thread_id = _optional_str(d, "service_thread_id", "")
    if service_thread_id is not None:
        check_thread_id(service_thread_id, field="field 'service_thread_id'")
    store = d["store"]
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

    store_kind: str | None = None
    store_state: Mapping[str, Any] | None = None
    if store is not None:
        if not isinstance(store, Mapping):
            raise ThreadStateError(f"field 'store' must be an object, got {store!r}")
        store_map: Mapping[str, Any] = store  # pyright: ignore[reportUnknownVariableType]
        _require(store_map, _STORE_KEYS, "store.")
        store_kind = _optional_str(store_map, "kind", "store.")
        if store_kind is None:
            raise ThreadStateError("field 'store.kind' is null; it must name the store kind")
        raw_state = store_map["state"]
        if not isinstance(raw_state, Mapping):
            raise ThreadStateError(f"field 'store.state' must be an object, got {raw_state!r}")
        store_state = raw_state  # pyright: ignore[reportUnknownVariableType]

    providers = d["context_providers"]
    if not isinstance(providers, Mapping):
        raise ThreadStateError(f"field 'context_providers' must be an object, got {providers!r}")
    context_state: dict[str, dict[str, Any]] = {}
    for key, value in providers.items():  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(value, Mapping):
            raise ThreadStateError(
                f"field 'context_providers.{key}' must be an object, got {value!r}"
            )
        context_state[str(key)] = dict(value)  # pyright: ignore[reportUnknownArgumentType]

    return ThreadState(
        thread_id=thread_id,
        user_id=_optional_str(d, "user_id", ""),
        service=service,
        agent_id=_optional_str(binding_map, "agent_id", "binding."),
        agent_name=_optional_str(binding_map, "agent_name", "binding."),
        service_thread_id=service_thread_id,
        store_kind=store_kind,
        store_state=store_state,
        context_state=context_state,
    )
