"""The rule of the saved states in the thread library: which ids a chat's or group's state names.

A chat's state names its own thread; a group chat's names its transcript (the group's id) and
each participant's thread ``<group id>.<name>``. :func:`check_layout` refuses any other state
(crafted or damaged), so a state can never point a resumed chat at another thread;
:func:`moved` rewrites a state for a fork.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from threadline.exceptions import ThreadStateError
from threadline.multiagent.thread import GROUP_STATE_TYPE, participant_thread_id

__all__ = ["check_layout", "damaged", "is_group_state", "moved"]


def is_group_state(state: Mapping[str, Any]) -> bool:
    """True for the state of a group chat (a ``MultiAgentThread``)."""
    return state.get("type") == GROUP_STATE_TYPE


def damaged(thread_id: str, why: str) -> ThreadStateError:
    """The one-line error of a saved state that cannot be resumed, and where its messages are."""
    return ThreadStateError(
        f"the saved state of thread {thread_id!r} is damaged ({why}); it was not resumed. "
        f"`threadline threads show {thread_id}` still shows its messages"
    )


def _store_ref(state: Mapping[str, Any], key: str) -> object:
    """The thread id a saved state's store (``state[key]``) names, if it names one."""
    ref: object = state.get(key)
    inner: object = cast(dict[str, object], ref).get("state") if isinstance(ref, dict) else None
    return cast(dict[str, object], inner).get("thread_id") if isinstance(inner, dict) else None


def check_layout(thread_id: str, body: object) -> dict[str, Any]:
    """A saved state that names exactly this library's threads for ``thread_id``.

    Raises:
        ThreadStateError: the state is not a dict, or any id in it is not the one the layout
            gives (see the module docstring); the message names the thread and the field.
    """
    if not isinstance(body, dict):
        raise damaged(thread_id, "not a JSON object")
    state = cast(dict[str, Any], body)
    if state.get("thread_id") != thread_id:
        raise damaged(thread_id, f"it names thread {state.get('thread_id')!r}")
    if not is_group_state(state):
        if _store_ref(state, "store") != thread_id:
            raise damaged(thread_id, "its store names another thread")
        return state
    if _store_ref(state, "transcript") != thread_id:
        raise damaged(thread_id, "its transcript names another thread")
    participants = state.get("participants")
    if not isinstance(participants, dict) or not participants:
        raise damaged(thread_id, "it has no participants")
    for name, own in cast(dict[str, Any], participants).items():
        expected = participant_thread_id(thread_id, name)
        if not isinstance(own, dict):
            raise damaged(thread_id, f"participant {name!r} is not a JSON object")
        own_state = cast(dict[str, Any], own)
        if own_state.get("thread_id") != expected or _store_ref(own_state, "store") != expected:
            raise damaged(thread_id, f"participant {name!r} names another thread")
    return state


def moved(state: dict[str, Any], new: str, path: str) -> dict[str, Any]:
    """A saved state for a fork ``new``: the same thread(s) under the fork's ids, memory anew.

    The memory providers' per-thread state is not copied: to memory a fork is a new thread,
    whose turns are recorded under its own id. Copied, it would also carry the parent's summary
    id, and the fork's first summary would replace (delete) the parent's.
    """
    moved = copy.deepcopy(state)
    moved["thread_id"] = new
    if not is_group_state(moved):
        moved["store"]["state"] = {"path": path, "thread_id": new}
        moved["context_providers"] = {}
        return moved
    moved["transcript"]["state"] = {"path": path, "thread_id": new}
    for name, own in moved["participants"].items():
        pid = participant_thread_id(new, name)
        own["thread_id"] = pid
        own["store"]["state"] = {"path": path, "thread_id": pid}
        own["context_providers"] = {}
    return moved
