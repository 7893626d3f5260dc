"""Tools in ``threadline chat`` (``--tools module:attribute``) and asking before they run.

A call to a tool with ``approval_mode`` stops the agent's turn (see
:mod:`threadline.agents._approvals`); the chat then asks in the terminal, ``Run
send_email({...})? [y/N]``, and sends the answers as the next turn, so they are stored in the
thread like any turn. Only an explicit ``y`` approves. A piped chat has no one to ask: it refuses
every such call (saying so on stderr), so a script can never run a guarded tool unseen.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, cast

from threadline.exceptions import UsageError
from threadline.tools import FunctionTool, as_tool
from threadline.types.contents import (
    FunctionApprovalRequestContent,
    FunctionApprovalResponseContent,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["answers", "load_tools"]

PIPED_REFUSAL = "refused: the chat was not interactive (stdin is not a terminal)"
TERMINAL_REFUSAL = "refused in the terminal"


def load_tools(specs: Sequence[str]) -> list[FunctionTool]:
    """The tools named by ``module:attribute`` specs: a tool, a function, or a list of them.

    Raises:
        UsageError: a spec is malformed, its module or attribute is missing, or it is no tool.
    """
    tools: list[FunctionTool] = []
    for spec in specs:
        module_name, sep, attribute = spec.partition(":")
        if not sep or not module_name or not attribute:
            raise UsageError(f"chat: give tools as module:attribute, got {spec!r}")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(f"chat: cannot import {module_name!r}: {exc}") from exc
        try:
            target: object = getattr(module, attribute)
        except AttributeError:
            raise UsageError(f"chat: {module_name!r} has no attribute {attribute!r}") from None
        items = cast(list[object], target) if isinstance(target, list | tuple) else [target]
        for item in items:
            if not isinstance(item, FunctionTool) and not callable(item):
                raise UsageError(f"chat: {spec} holds {item!r}, which is not a tool or function")
            tools.append(as_tool(cast(FunctionTool | Callable[..., Any], item)))
    return tools


def _ask(request: FunctionApprovalRequestContent, read: Callable[[str], str]) -> bool:
    call = request.function_call
    try:
        reply = read(f"Run {call.name}({call.arguments})? [y/N] ")
    except EOFError:
        return False
    return reply.strip().lower() in ("y", "yes")


def answers(
    requests: Sequence[FunctionApprovalRequestContent],
    *,
    interactive: bool,
    read: Callable[[str], str] = input,
    err: TextIO | None = None,
) -> ChatMessage:
    """The user's answers to ``requests``: asked one by one, or all refused when piped."""
    decided: list[FunctionApprovalResponseContent] = []
    for request in requests:
        if interactive:
            approved = _ask(request, read)
            reason = None if approved else TERMINAL_REFUSAL
        else:
            call = request.function_call
            print(
                f"threadline chat: {call.name}({call.arguments}) needs approval; {PIPED_REFUSAL}",
                file=err or sys.stderr,
            )
            approved, reason = False, PIPED_REFUSAL
        decided.append(request.create_response(approved, reason=reason))
    return ChatMessage(Role.USER, contents=decided)
